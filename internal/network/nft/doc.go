// Package nft is the nftables vocabulary Havre's node components share: a plain Go model of
// tables, chains, rules, named sets and verdict maps built from a fixed set of typed rule
// primitives, which
//
//   - renders as nft text (golden tests, humans: WriteText),
//   - compiles to google/nftables expressions and is written to the kernel with nf_tables
//     batches of its own (Conn, Txn: one acknowledgement per transaction, bounded
//     transactions),
//   - is diffed (Plan: what turns one fragment of a table into another, or what the kernel
//     holds into the model) so that syncs send only changes, and
//   - is walked by a packet tracer (Tracer) the way the kernel's hooks would walk it, so that
//     tests can say what happens to a packet without a kernel.
//
// The service proxy (internal/network/proxy) and the NetworkPolicy enforcer
// (internal/network/netpol) build their rulesets with it.
//
// Why the care about what a commit contains: nf_tables validates a table at a commit that
// added a rule with a validate operation (any verdict, jump, nat, reject, ...) or a verdict
// map element that jumps or goes to a chain, and validation walks the jump graph of every
// base chain of that table; element changes of plain sets are not validated. Owners of
// tables keep rule churn low and express changes as element changes where they can.
//
// The package must never touch a table its caller did not name, never shell out to nft or
// iptables, and never list the kernel's ruleset but when asked (Conn.ReadTables: at start or
// after a failed sync, never on a hot path).
package nft
