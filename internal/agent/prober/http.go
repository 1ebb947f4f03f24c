package prober

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/havre/havre/internal/version"
)

// maxBody is how much of a response body is read (and reported).
const maxBody = 10 << 10

// transport is shared by every HTTP probe and hook: no keep-alives (a probe
// is one request), no proxy, and certificates are not verified, as the
// kubelet does.
var transport = &http.Transport{
	Proxy:              nil,
	DisableKeepAlives:  true,
	DisableCompression: true,
	TLSClientConfig:    &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // probes do not verify, as upstream
	DialContext:        (&net.Dialer{}).DialContext,
}

// UserAgent is the User-Agent of the kubelet's requests made for purpose
// ("probe", "lifecycle"): kube-probe/1.37.
func UserAgent(purpose string) string {
	return fmt.Sprintf("kube-%s/%s.%s", purpose, version.KubernetesMajor, version.KubernetesMinor)
}

// NewHTTPGetRequest builds the request of an httpGet probe or hook: scheme
// (default http), host (default the pod's IP), port (a number or the name of
// a container port), path and headers; the Host header sets the request's
// host, User-Agent and Accept have defaults.
func NewHTTPGetRequest(a *corev1.HTTPGetAction, c *corev1.Container, podIP, purpose string) (*http.Request, error) {
	scheme := strings.ToLower(string(a.Scheme))
	if scheme == "" {
		scheme = "http"
	}
	host := a.Host
	if host == "" {
		host = podIP
	}
	port, err := ResolvePort(a.Port, c)
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(a.Path)
	if err != nil {
		u = &url.URL{Path: a.Path}
	}
	u.Scheme = scheme
	u.Host = net.JoinHostPort(host, strconv.Itoa(port))
	req, err := http.NewRequest(http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	h := http.Header{}
	for _, hh := range a.HTTPHeaders {
		h.Add(hh.Name, hh.Value)
	}
	if _, ok := h["User-Agent"]; !ok {
		h.Set("User-Agent", UserAgent(purpose))
	}
	if _, ok := h["Accept"]; !ok {
		h.Set("Accept", "*/*")
	} else if h.Get("Accept") == "" {
		h.Del("Accept")
	}
	req.Header = h
	req.Host = h.Get("Host")
	return req, nil
}

// redirectChecker follows redirects to the same host only (at most ten); a
// redirect elsewhere ends the request with the redirect's response.
func redirectChecker(req *http.Request, via []*http.Request) error {
	if req.URL.Hostname() != via[0].URL.Hostname() {
		return http.ErrUseLastResponse
	}
	if len(via) >= 10 {
		return errors.New("stopped after 10 redirects")
	}
	return nil
}

// HTTP runs an httpGet probe: a status from 200 to 399 is a success (3xx
// left unfollowed a warning), anything else, a timeout or a connection
// error a failure.
func HTTP(ctx context.Context, req *http.Request, timeout time.Duration) (Outcome, string, error) {
	client := &http.Client{Transport: transport, Timeout: timeout, CheckRedirect: redirectChecker}
	res, err := client.Do(req.WithContext(ctx))
	if err != nil {
		return OutcomeFailure, err.Error(), nil
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, maxBody))
	if err != nil {
		return OutcomeFailure, "", err
	}
	body := string(b)
	if res.StatusCode >= http.StatusOK && res.StatusCode < http.StatusBadRequest {
		if res.StatusCode >= http.StatusMultipleChoices {
			return OutcomeWarning, fmt.Sprintf("Probe terminated redirects, Response body: %v", body), nil
		}
		return OutcomeSuccess, body, nil
	}
	return OutcomeFailure, fmt.Sprintf("HTTP probe failed with statuscode: %d", res.StatusCode), nil
}

// Get makes an httpGet lifecycle hook's request (built by
// NewHTTPGetRequest) with the probes' transport. Only a request that could
// not be made fails: the hook's response status is not looked at, as the
// kubelet does.
func Get(ctx context.Context, req *http.Request) error {
	client := &http.Client{Transport: transport, CheckRedirect: redirectChecker}
	res, err := client.Do(req.WithContext(ctx))
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, maxBody))
	return res.Body.Close()
}
