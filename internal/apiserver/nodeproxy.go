package apiserver

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apiserver/pkg/admission"

	"github.com/havre/havre/internal/registry"
)

// The pod subresources below are served by the node agent of the pod's
// node (its streaming API, the kubelet's): the API server checks the
// request, finds the node and proxies the request — and for exec, attach
// and port-forward the upgraded connection — to it over TLS with its own
// client certificate.

// nodeTransport reaches node agents. Upgraded connections need HTTP/1.1.
func newNodeTransport(cert *tls.Certificate) *http.Transport {
	tc := &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: []string{"http/1.1"},
		// Agents serve a self-signed certificate, as kubelets do by
		// default; the agent authenticates the API server by its
		// client certificate.
		InsecureSkipVerify: true, //nolint:gosec // see above
	}
	if cert != nil {
		tc.Certificates = []tls.Certificate{*cert}
	}
	return &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:     tc,
		TLSHandshakeTimeout: 10 * time.Second,
		MaxIdleConnsPerHost: 8,
		IdleConnTimeout:     90 * time.Second,
		ForceAttemptHTTP2:   false,
		TLSNextProto:        map[string]func(string, *tls.Conn) http.RoundTripper{},
	}
}

// streamed reports whether a pod subresource is served by the node.
func streamed(sub string) bool {
	switch sub {
	case registry.Log, registry.Exec, registry.Attach, registry.PortForward:
		return true
	}
	return false
}

// serveNodeStream serves pods/log, exec, attach and portforward.
func (h *resourceHandler) serveNodeStream(w http.ResponseWriter, r *http.Request, info requestInfo) {
	ctx, cancel := requestContext(r)
	pod, err := h.srv.getPod(ctx, info.namespace, info.name)
	cancel()
	if err != nil {
		writeError(w, err)
		return
	}
	if err := h.admitConnect(r, info); err != nil {
		writeError(w, err)
		return
	}
	q := r.URL.Query()
	var path string
	switch info.subresource {
	case registry.Log:
		if err := validateLogQuery(q); err != nil {
			writeError(w, err)
			return
		}
		container, err := podContainer(pod, q.Get("container"))
		if err != nil {
			writeError(w, err)
			return
		}
		q.Del("container")
		path = "/containerLogs/" + pod.Namespace + "/" + pod.Name + "/" + container
	case registry.Exec, registry.Attach:
		container, err := podContainer(pod, q.Get("container"))
		if err != nil {
			writeError(w, err)
			return
		}
		q.Del("container")
		if info.subresource == registry.Exec && len(q["command"]) == 0 {
			writeError(w, apierrors.NewBadRequest("you must specify at least one command for the container"))
			return
		}
		path = "/" + info.subresource + "/" + pod.Namespace + "/" + pod.Name + "/" + container
	case registry.PortForward:
		path = "/portForward/" + pod.Namespace + "/" + pod.Name
	}
	if pod.Spec.NodeName == "" {
		writeError(w, apierrors.NewBadRequest(fmt.Sprintf("pod %s does not have a host assigned", pod.Name)))
		return
	}
	if info.subresource != registry.Log && (pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed) {
		writeError(w, apierrors.NewBadRequest(fmt.Sprintf("cannot %s into a container in a completed pod; current phase is %s", info.subresource, pod.Status.Phase)))
		return
	}
	ctx, cancel = requestContext(r)
	base, err := h.srv.nodeStreamingURL(ctx, pod.Spec.NodeName)
	cancel()
	if err != nil {
		writeError(w, err)
		return
	}
	target := *base
	target.Path = path
	target.RawQuery = q.Encode()
	h.srv.proxyToNode(w, r, &target)
}

func (s *Server) getPod(ctx context.Context, namespace, name string) (*corev1.Pod, error) {
	h := s.handler("", "v1", "pods")
	obj, err := h.objs.get(ctx, namespace, name)
	if err != nil {
		return nil, err
	}
	return obj.(*corev1.Pod), nil
}

// nodeStreamingURL is the base URL of a node's streaming API: its internal
// (else external, else host name) address and its kubelet endpoint port.
func (s *Server) nodeStreamingURL(ctx context.Context, nodeName string) (*url.URL, error) {
	obj, err := s.handler("", "v1", "nodes").objs.get(ctx, "", nodeName)
	if err != nil {
		if apierrors.IsNotFound(err) {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("node %q of the pod is not registered", nodeName))
		}
		return nil, err
	}
	node := obj.(*corev1.Node)
	port := node.Status.DaemonEndpoints.KubeletEndpoint.Port
	if port <= 0 {
		return nil, apierrors.NewServiceUnavailable(fmt.Sprintf("node %q has no streaming endpoint (status.daemonEndpoints.kubeletEndpoint)", nodeName))
	}
	var host string
	for _, t := range []corev1.NodeAddressType{corev1.NodeInternalIP, corev1.NodeExternalIP, corev1.NodeHostName} {
		for _, a := range node.Status.Addresses {
			if a.Type == t && host == "" {
				host = a.Address
			}
		}
	}
	if host == "" {
		return nil, apierrors.NewServiceUnavailable(fmt.Sprintf("node %q has no address", nodeName))
	}
	return &url.URL{Scheme: "https", Host: net.JoinHostPort(host, strconv.Itoa(int(port)))}, nil
}

// proxyToNode forwards the request, streaming the answer (and the
// connection, once upgraded) both ways.
func (s *Server) proxyToNode(w http.ResponseWriter, r *http.Request, target *url.URL) {
	p := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL = target
			pr.Out.Host = target.Host
			// The user's credentials are not for the node.
			pr.Out.Header.Del("Authorization")
			pr.Out.Header.Del("Impersonate-User")
			pr.Out.Header.Del("Impersonate-Group")
		},
		Transport:     s.nodeTransport,
		FlushInterval: -1,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if errors.Is(err, context.Canceled) {
				return
			}
			slog.Debug("proxying to a node", "url", target.Redacted(), "err", err)
			writeError(w, apierrors.NewServiceUnavailable(fmt.Sprintf("the node's agent cannot be reached: %v", err)))
		},
		ErrorLog: slog.NewLogLogger(slog.Default().Handler(), slog.LevelDebug),
	}
	p.ServeHTTP(w, r)
}

// podContainer resolves the container a request names: the only one when
// none is named, as kube-apiserver does.
func podContainer(pod *corev1.Pod, name string) (string, error) {
	if name == "" {
		switch len(pod.Spec.Containers) {
		case 1:
			return pod.Spec.Containers[0].Name, nil
		default:
			var names, inits []string
			for _, c := range pod.Spec.Containers {
				names = append(names, c.Name)
			}
			for _, c := range pod.Spec.InitContainers {
				inits = append(inits, c.Name)
			}
			msg := fmt.Sprintf("a container name must be specified for pod %s, choose one of: %v", pod.Name, names)
			if len(inits) > 0 {
				msg += fmt.Sprintf(" or one of the init containers: %v", inits)
			}
			return "", apierrors.NewBadRequest(msg)
		}
	}
	for _, list := range [][]corev1.Container{pod.Spec.Containers, pod.Spec.InitContainers} {
		for _, c := range list {
			if c.Name == name {
				return name, nil
			}
		}
	}
	for _, c := range pod.Spec.EphemeralContainers {
		if c.Name == name {
			return name, nil
		}
	}
	return "", apierrors.NewBadRequest(fmt.Sprintf("container %s is not valid for pod %s", name, pod.Name))
}

// validateLogQuery checks PodLogOptions as kube-apiserver does.
func validateLogQuery(q url.Values) error {
	var errs field.ErrorList
	intParam := func(name string, min int64) {
		if v := q.Get(name); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				errs = append(errs, field.Invalid(field.NewPath(name), v, "must be an integer"))
			} else if n < min {
				msg := "must be greater than or equal to 0"
				if min == 1 {
					msg = "must be greater than 0"
				}
				errs = append(errs, field.Invalid(field.NewPath(name), n, msg))
			}
		}
	}
	intParam("tailLines", 0)
	intParam("limitBytes", 1)
	intParam("sinceSeconds", 1)
	if q.Get("sinceSeconds") != "" && q.Get("sinceTime") != "" {
		errs = append(errs, field.Forbidden(field.NewPath(""), "at most one of `sinceTime` or `sinceSeconds` may be specified"))
	}
	if v := q.Get("sinceTime"); v != "" {
		if _, err := time.Parse(time.RFC3339, v); err != nil {
			errs = append(errs, field.Invalid(field.NewPath("sinceTime"), v, "must be an RFC3339 time"))
		}
	}
	if len(errs) > 0 {
		return apierrors.NewInvalid(schema.GroupKind{Kind: "PodLogOptions"}, "", errs)
	}
	return nil
}

// admitConnect offers exec, attach and port-forward (CONNECT) to the
// admission plugins with the request's options, as kube-apiserver does.
func (h *resourceHandler) admitConnect(r *http.Request, info requestInfo) error {
	q := r.URL.Query()
	flag := func(name string) bool { v := q.Get(name); return v == "true" || v == "1" }
	var opts runtime.Object
	switch info.subresource {
	case registry.Exec:
		opts = &corev1.PodExecOptions{Container: q.Get("container"), Command: q["command"],
			Stdin: flag("stdin"), Stdout: flag("stdout"), Stderr: flag("stderr"), TTY: flag("tty")}
	case registry.Attach:
		opts = &corev1.PodAttachOptions{Container: q.Get("container"),
			Stdin: flag("stdin"), Stdout: flag("stdout"), Stderr: flag("stderr"), TTY: flag("tty")}
	case registry.PortForward:
		pf := &corev1.PodPortForwardOptions{}
		for _, p := range q["ports"] {
			for _, one := range strings.Split(p, ",") {
				n, err := strconv.ParseInt(strings.TrimSpace(one), 10, 32)
				if err != nil {
					return apierrors.NewBadRequest(fmt.Sprintf("invalid port %q", one))
				}
				pf.Ports = append(pf.Ports, int32(n))
			}
		}
		opts = pf
	default:
		return nil
	}
	attrs := admissionAttrs{op: admission.Connect, obj: opts, subresource: info.subresource,
		kind: h.res.Subresource(info.subresource).Kind, namespace: info.namespace, name: info.name}
	if err := h.admitMutate(r.Context(), attrs); err != nil {
		return err
	}
	return h.admitValidate(r.Context(), attrs)
}
