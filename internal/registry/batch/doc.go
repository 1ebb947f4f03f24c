// Package batch holds the strategies for the batch/v1 kinds: Jobs, with
// upstream's generated selector and labels, and CronJobs, whose schedule
// and time zone are parsed at admission.
package batch
