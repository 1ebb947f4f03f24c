package streaming

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	remotecommandconsts "k8s.io/apimachinery/pkg/util/remotecommand"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/remotecommand"
	"k8s.io/client-go/util/exec"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/streaming/pkg/httpstream/wsstream"
)

// streamIdleTimeout ends exec and attach sessions with no traffic, as the
// kubelet's --streaming-connection-idle-timeout (4h) does.
const streamIdleTimeout = 4 * time.Hour

// streams are what an exec or attach asks for.
type streams struct {
	stdin, stdout, stderr, tty bool
}

func parseStreams(r *http.Request) (streams, error) {
	s := streams{
		stdin:  boolParam(r, "stdin", "input"),
		stdout: boolParam(r, "stdout", "output"),
		stderr: boolParam(r, "stderr", "error"),
		tty:    boolParam(r, "tty"),
	}
	if s.tty && s.stderr {
		// With a TTY the runtime merges stderr into stdout.
		s.stderr = false
	}
	if !s.stdin && !s.stdout && !s.stderr {
		return s, badRequest("you must specify at least 1 of stdin, stdout, stderr")
	}
	return s, nil
}

func (s *Server) serveExec(w http.ResponseWriter, r *http.Request) {
	st, err := parseStreams(r)
	if err != nil {
		writeStatus(w, err)
		return
	}
	cmd := commandParam(r)
	if len(cmd) == 0 {
		writeStatus(w, badRequest("you must specify at least one command for the container"))
		return
	}
	c, err := s.runningContainer(r)
	if err != nil {
		writeStatus(w, err)
		return
	}
	u, err := s.node.Exec(r.Context(), &runtimeapi.ExecRequest{
		ContainerId: c.ID, Cmd: cmd, Tty: st.tty, Stdin: st.stdin, Stdout: st.stdout, Stderr: st.stderr,
	})
	if err != nil {
		writeStatus(w, apierrors.NewInternalError(fmt.Errorf("exec: %w", err)))
		return
	}
	s.serveRemoteCommand(w, r, u, st)
}

func (s *Server) serveAttach(w http.ResponseWriter, r *http.Request) {
	st, err := parseStreams(r)
	if err != nil {
		writeStatus(w, err)
		return
	}
	c, err := s.runningContainer(r)
	if err != nil {
		writeStatus(w, err)
		return
	}
	u, err := s.node.Attach(r.Context(), &runtimeapi.AttachRequest{
		ContainerId: c.ID, Tty: st.tty, Stdin: st.stdin, Stdout: st.stdout, Stderr: st.stderr,
	})
	if err != nil {
		writeStatus(w, apierrors.NewInternalError(fmt.Errorf("attach: %w", err)))
		return
	}
	s.serveRemoteCommand(w, r, u, st)
}

func (s *Server) runningContainer(r *http.Request) (Container, error) {
	ns, pod, name := r.PathValue("namespace"), r.PathValue("pod"), r.PathValue("container")
	c, err := s.node.Container(r.Context(), ns, pod, name, false)
	if err != nil {
		return c, err
	}
	if !c.Running {
		return c, badRequest("container %s is not running", name)
	}
	return c, nil
}

// serveRemoteCommand connects the client to the runtime's stream at
// runtimeURL: WebSocket v5 clients through a translation to SPDY, SPDY
// clients by proxying their upgraded connection.
func (s *Server) serveRemoteCommand(w http.ResponseWriter, r *http.Request, runtimeURL string, st streams) {
	target, err := url.Parse(runtimeURL)
	if err != nil {
		writeStatus(w, apierrors.NewInternalError(err))
		return
	}
	if wsstream.IsWebSocketRequestWithStreamCloseProtocol(r) {
		translateWebSocket(w, r, target, st)
		return
	}
	proxyUpgrade(w, r, target)
}

// proxyUpgrade forwards a request, and once upgraded the connection, to
// target (the runtime's streaming server, on loopback).
func proxyUpgrade(w http.ResponseWriter, r *http.Request, target *url.URL) {
	p := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL = target
			pr.Out.Host = target.Host
			// The runtime serves POST; WebSocket handshakes are GETs.
			if pr.In.Header.Get("Upgrade") != "" && !wsstream.IsWebSocketRequest(pr.In) {
				pr.Out.Method = http.MethodPost
			}
		},
		FlushInterval: -1,
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
			writeStatus(w, apierrors.NewInternalError(fmt.Errorf("the container runtime's stream: %w", err)))
		},
	}
	p.ServeHTTP(w, r)
}

// translateWebSocket serves a v5.channel.k8s.io WebSocket client from the
// runtime's SPDY stream: channels 0-2 are stdin, stdout and stderr, 3 the
// final Status and 4 terminal resizes, as kube-apiserver's stream
// translator does.
func translateWebSocket(w http.ResponseWriter, r *http.Request, target *url.URL, st streams) {
	channels := []wsstream.ChannelType{
		channel(st.stdin, wsstream.ReadChannel),
		channel(st.stdout, wsstream.WriteChannel),
		channel(st.stderr, wsstream.WriteChannel),
		wsstream.WriteChannel,
		channel(st.tty, wsstream.ReadChannel),
	}
	conn := wsstream.NewConn(map[string]wsstream.ChannelProtocolConfig{
		remotecommandconsts.StreamProtocolV5Name: {Binary: true, Channels: channels},
	})
	conn.SetIdleTimeout(streamIdleTimeout)
	_, chans, err := conn.Open(w, r)
	if err != nil {
		slog.Debug("exec: websocket handshake", "err", err)
		return
	}
	defer conn.Close()

	executor, err := remotecommand.NewSPDYExecutor(&rest.Config{Host: target.Scheme + "://" + target.Host}, http.MethodPost, target)
	var opts remotecommand.StreamOptions
	if st.stdin {
		opts.Stdin = chans[remotecommandconsts.StreamStdIn]
	}
	if st.stdout {
		opts.Stdout = chans[remotecommandconsts.StreamStdOut]
	}
	if st.stderr {
		opts.Stderr = chans[remotecommandconsts.StreamStdErr]
	}
	opts.Tty = st.tty
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	if st.tty {
		opts.TerminalSizeQueue = newSizeQueue(ctx, chans[remotecommandconsts.StreamResize])
	}
	if err == nil {
		err = executor.StreamWithContext(ctx, opts)
	}
	writeResult(chans[remotecommandconsts.StreamErr], err)
}

func channel(enabled bool, t wsstream.ChannelType) wsstream.ChannelType {
	if enabled {
		return t
	}
	return wsstream.IgnoreChannel
}

// writeResult writes the command's outcome on the error channel as the
// Status a v4/v5 client decodes: Success, or NonZeroExitCode with the code.
func writeResult(ch io.Writer, err error) {
	st := metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}, Status: metav1.StatusSuccess}
	var code exec.CodeExitError
	switch {
	case err == nil:
	case errors.As(err, &code):
		st = metav1.Status{
			TypeMeta: st.TypeMeta,
			Status:   metav1.StatusFailure,
			Reason:   remotecommandconsts.NonZeroExitCodeReason,
			Message:  fmt.Sprintf("command terminated with non-zero exit code: %v", code),
			Details: &metav1.StatusDetails{Causes: []metav1.StatusCause{{
				Type: remotecommandconsts.ExitCodeCauseType, Message: strconv.Itoa(code.ExitStatus()),
			}}},
		}
	default:
		st = metav1.Status{TypeMeta: st.TypeMeta, Status: metav1.StatusFailure, Message: err.Error()}
	}
	data, _ := json.Marshal(&st)
	_, _ = ch.Write(data)
}

// sizeQueue delivers the terminal sizes the client sends on the resize
// channel (JSON {"Width":..,"Height":..}).
type sizeQueue struct {
	ch  chan remotecommand.TerminalSize
	ctx context.Context
}

func newSizeQueue(ctx context.Context, r io.Reader) *sizeQueue {
	q := &sizeQueue{ch: make(chan remotecommand.TerminalSize, 1), ctx: ctx}
	go func() {
		dec := json.NewDecoder(r)
		for {
			var size remotecommand.TerminalSize
			if err := dec.Decode(&size); err != nil {
				return
			}
			select {
			case q.ch <- size:
			case <-ctx.Done():
				return
			}
		}
	}()
	return q
}

func (q *sizeQueue) Next() *remotecommand.TerminalSize {
	select {
	case s := <-q.ch:
		return &s
	case <-q.ctx.Done():
		return nil
	}
}
