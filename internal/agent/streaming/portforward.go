package streaming

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	gwebsocket "github.com/gorilla/websocket"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	portforwardconsts "k8s.io/apimachinery/pkg/util/portforward"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
	"k8s.io/streaming/pkg/httpstream/wsstream"
)

func (s *Server) servePortForward(w http.ResponseWriter, r *http.Request) {
	ns, pod := r.PathValue("namespace"), r.PathValue("pod")
	sandbox, err := s.node.Sandbox(r.Context(), ns, pod)
	if err != nil {
		writeStatus(w, err)
		return
	}
	var ports []int32
	for _, list := range r.URL.Query()["ports"] {
		for _, p := range strings.Split(list, ",") {
			n, err := strconv.ParseUint(strings.TrimSpace(p), 10, 16)
			if err != nil || n == 0 {
				writeStatus(w, badRequest("invalid port %q", p))
				return
			}
			ports = append(ports, int32(n))
		}
	}
	u, err := s.node.PortForward(r.Context(), &runtimeapi.PortForwardRequest{PodSandboxId: sandbox, Port: ports})
	if err != nil {
		writeStatus(w, apierrors.NewInternalError(fmt.Errorf("port-forward: %w", err)))
		return
	}
	target, err := url.Parse(u)
	if err != nil {
		writeStatus(w, apierrors.NewInternalError(err))
		return
	}
	if wsstream.IsWebSocketRequestWithTunnelingProtocol(r) {
		tunnelSPDY(w, r, target)
		return
	}
	proxyUpgrade(w, r, target)
}

// tunnelSPDY serves kubectl's port-forward over WebSocket: the client
// speaks SPDY inside binary WebSocket messages (subprotocol
// "SPDY/3.1+portforward.k8s.io"). The runtime's SPDY connection is opened
// with an upgrade request and the bytes are carried across unchanged.
func tunnelSPDY(w http.ResponseWriter, r *http.Request, target *url.URL) {
	backend, br, err := dialSPDY(r.Context(), target, portforwardconsts.PortForwardV1Name)
	if err != nil {
		writeStatus(w, apierrors.NewInternalError(fmt.Errorf("the container runtime's port-forward stream: %w", err)))
		return
	}
	defer backend.Close()
	up := gwebsocket.Upgrader{
		Subprotocols:    []string{portforwardconsts.WebsocketsSPDYTunnelingPortForwardV1},
		CheckOrigin:     func(*http.Request) bool { return true },
		ReadBufferSize:  32 << 10,
		WriteBufferSize: 32 << 10,
	}
	ws, err := up.Upgrade(w, r, nil)
	if err != nil {
		slog.Debug("port-forward: websocket upgrade", "err", err)
		return
	}
	defer ws.Close()
	done := make(chan struct{}, 2)
	go func() { // client → runtime
		defer func() { done <- struct{}{} }()
		for {
			typ, msg, err := ws.NextReader()
			if err != nil {
				return
			}
			if typ != gwebsocket.BinaryMessage {
				continue
			}
			if _, err := io.Copy(backend, msg); err != nil {
				return
			}
		}
	}()
	go func() { // runtime → client
		defer func() { done <- struct{}{} }()
		buf := make([]byte, 32<<10)
		for {
			n, err := br.Read(buf)
			if n > 0 {
				if werr := ws.WriteMessage(gwebsocket.BinaryMessage, buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				_ = ws.WriteControl(gwebsocket.CloseMessage, gwebsocket.FormatCloseMessage(gwebsocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
				return
			}
		}
	}()
	select {
	case <-done:
	case <-r.Context().Done():
	}
}

// dialSPDY opens target with an SPDY/3.1 upgrade for protocol and returns
// the upgraded connection and a reader of it (holding any bytes read past
// the response).
func dialSPDY(ctx context.Context, target *url.URL, protocol string) (net.Conn, *bufio.Reader, error) {
	if target.Scheme != "http" {
		return nil, nil, fmt.Errorf("unsupported stream URL scheme %q", target.Scheme)
	}
	host := target.Host
	if target.Port() == "" {
		host = net.JoinHostPort(target.Hostname(), "80")
	}
	var d net.Dialer
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := d.DialContext(dctx, "tcp", host)
	if err != nil {
		return nil, nil, err
	}
	req, _ := http.NewRequest(http.MethodPost, target.String(), nil)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "SPDY/3.1")
	req.Header.Set("X-Stream-Protocol-Version", protocol)
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if err := req.Write(conn); err != nil {
		conn.Close()
		return nil, nil, err
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		conn.Close()
		return nil, nil, err
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		conn.Close()
		return nil, nil, fmt.Errorf("upgrade refused: %s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	if got := resp.Header.Get("X-Stream-Protocol-Version"); got != "" && got != protocol {
		conn.Close()
		return nil, nil, errors.New("the runtime chose stream protocol " + got)
	}
	_ = conn.SetDeadline(time.Time{})
	return conn, br, nil
}
