package streaming

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"strconv"
	"time"

	"k8s.io/apimachinery/pkg/runtime/schema"
)

var schemaNodes = schema.GroupResource{Resource: "nodes"}

// LogOptions select the lines of a container log, as PodLogOptions do.
type LogOptions struct {
	Follow     bool
	Previous   bool
	Timestamps bool
	// TailLines, when >= 0, keeps only the last lines.
	TailLines int64
	// LimitBytes, when > 0, stops after that many bytes.
	LimitBytes int64
	// Since drops lines older than it.
	Since time.Time
	// Stream is "" or All for both, else Stdout or Stderr.
	Stream string
}

// parseLogOptions reads PodLogOptions' query parameters. The API server has
// validated them already.
func parseLogOptions(r *http.Request, now time.Time) (LogOptions, error) {
	q := r.URL.Query()
	o := LogOptions{
		Follow: boolParam(r, "follow"), Previous: boolParam(r, "previous"), Timestamps: boolParam(r, "timestamps"),
		TailLines: -1, Stream: q.Get("stream"),
	}
	if v := q.Get("tailLines"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return o, badRequest("tailLines: invalid value %q", v)
		}
		o.TailLines = n
	}
	if v := q.Get("limitBytes"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 {
			return o, badRequest("limitBytes: invalid value %q", v)
		}
		o.LimitBytes = n
	}
	if v := q.Get("sinceSeconds"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 {
			return o, badRequest("sinceSeconds: invalid value %q", v)
		}
		o.Since = now.Add(-time.Duration(n) * time.Second)
	}
	if v := q.Get("sinceTime"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return o, badRequest("sinceTime: invalid value %q", v)
		}
		o.Since = t
	}
	switch o.Stream {
	case "", "All", "Stdout", "Stderr":
	default:
		return o, badRequest("stream: unsupported value %q: supported values: All, Stdout, Stderr", o.Stream)
	}
	return o, nil
}

func (s *Server) serveLogs(w http.ResponseWriter, r *http.Request) {
	ns, pod, name := r.PathValue("namespace"), r.PathValue("pod"), r.PathValue("container")
	opts, err := parseLogOptions(r, time.Now())
	if err != nil {
		writeStatus(w, err)
		return
	}
	c, err := s.node.Container(r.Context(), ns, pod, name, opts.Previous)
	if err != nil {
		writeStatus(w, err)
		return
	}
	f, err := os.Open(c.LogPath)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			// No output yet.
			w.Header().Set("Content-Type", "text/plain")
			if !opts.Follow || !c.Running {
				return
			}
		} else {
			writeStatus(w, err)
			return
		}
	}
	if f != nil {
		defer f.Close()
	}
	w.Header().Set("Content-Type", "text/plain")
	w.Header().Set("Transfer-Encoding", "chunked")
	w.WriteHeader(http.StatusOK)
	out := &flushWriter{w: w}
	if fl, ok := w.(http.Flusher); ok {
		out.flush = fl.Flush
	}
	follow := func(ctx context.Context) bool { return false }
	if opts.Follow && !opts.Previous {
		follow = func(ctx context.Context) bool {
			cur, err := s.node.Container(ctx, ns, pod, name, false)
			return err == nil && cur.ID == c.ID && cur.Running
		}
	}
	_ = copyLog(r.Context(), out, f, c.LogPath, opts, follow, s.pollInterval)
}

// flushWriter flushes after every write so that followed logs arrive as
// they are written.
type flushWriter struct {
	w     io.Writer
	flush func()
}

func (f *flushWriter) Write(p []byte) (int, error) {
	n, err := f.w.Write(p)
	if f.flush != nil {
		f.flush()
	}
	return n, err
}

// errLimit ends a copy once LimitBytes are written.
var errLimit = errors.New("limit reached")

// copyLog writes the selected lines of a CRI log file to out. With follow,
// it keeps reading new lines while running reports the container running.
func copyLog(ctx context.Context, out io.Writer, f *os.File, path string, o LogOptions, running func(context.Context) bool, poll time.Duration) error {
	lw := &lineWriter{out: out, opts: o}
	if f == nil {
		// The file does not exist yet: wait for it while following.
		for f == nil {
			if !waitPoll(ctx, poll) || !running(ctx) {
				return nil
			}
			if nf, err := os.Open(path); err == nil {
				f = nf
				defer nf.Close()
			}
		}
	}
	if o.TailLines >= 0 {
		if err := seekTail(f, o.TailLines); err != nil {
			return err
		}
	}
	br := bufio.NewReaderSize(f, 64<<10)
	var partial []byte
	lastCheck := time.Now()
	for {
		line, err := br.ReadBytes('\n')
		if len(line) > 0 && line[len(line)-1] == '\n' {
			partial = append(partial, line...)
			if werr := lw.writeRecord(partial); werr != nil {
				if errors.Is(werr, errLimit) {
					return nil
				}
				return werr
			}
			partial = partial[:0]
			continue
		}
		partial = append(partial, line...)
		if err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		// At the end of what is written so far.
		if !o.Follow {
			return nil
		}
		if time.Since(lastCheck) >= 10*poll {
			lastCheck = time.Now()
			if !running(ctx) {
				// Read what the container wrote before it exited.
				rest, _ := io.ReadAll(br)
				partial = append(partial, rest...)
				for _, rec := range bytes.SplitAfter(partial, []byte("\n")) {
					if len(rec) > 0 && rec[len(rec)-1] == '\n' {
						if err := lw.writeRecord(rec); err != nil {
							return nil
						}
					}
				}
				return nil
			}
		}
		if !waitPoll(ctx, poll) {
			return ctx.Err()
		}
	}
}

func waitPoll(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// seekTail positions f at the start of the last n full lines.
func seekTail(f *os.File, n int64) error {
	st, err := f.Stat()
	if err != nil {
		return err
	}
	size := st.Size()
	if n == 0 {
		_, err := f.Seek(size, io.SeekStart)
		return err
	}
	const chunk = 32 << 10
	var newlines int64
	pos := size
	buf := make([]byte, chunk)
	for pos > 0 {
		step := min(int64(chunk), pos)
		pos -= step
		if _, err := f.ReadAt(buf[:step], pos); err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		for i := step - 1; i >= 0; i-- {
			if buf[i] != '\n' {
				continue
			}
			// The file's final newline ends the last line; it does not
			// start one.
			if pos+i == size-1 {
				continue
			}
			newlines++
			if newlines == n {
				_, err := f.Seek(pos+i+1, io.SeekStart)
				return err
			}
		}
	}
	_, err = f.Seek(0, io.SeekStart)
	return err
}

// lineWriter writes CRI log records ("<time> <stream> <P|F> <text>") as
// the kubelet does: partial records are joined, timestamps prefixed on
// request, old and unwanted-stream lines dropped, output limited.
type lineWriter struct {
	out     io.Writer
	opts    LogOptions
	written int64
	// inPartial: the previous record was partial, so this one continues a
	// line already started (or skipped).
	inPartial, skipping bool
}

func (l *lineWriter) writeRecord(rec []byte) error {
	ts, rest, ok := bytes.Cut(rec, []byte(" "))
	if !ok {
		return nil
	}
	stream, rest, ok := bytes.Cut(rest, []byte(" "))
	if !ok {
		return nil
	}
	tag, text, ok := bytes.Cut(rest, []byte(" "))
	if !ok {
		// An empty line: "<time> <stream> F\n".
		tag, text = bytes.TrimSuffix(rest, []byte("\n")), []byte("\n")
	}
	partial := bytes.HasPrefix(tag, []byte("P"))
	if partial {
		text = bytes.TrimSuffix(text, []byte("\n"))
	}
	continuing := l.inPartial
	l.inPartial = partial
	if continuing {
		if l.skipping {
			return nil
		}
		return l.write(text)
	}
	l.skipping = false
	t, err := time.Parse(time.RFC3339Nano, string(ts))
	if err != nil {
		l.skipping = true
		return nil
	}
	if !l.opts.Since.IsZero() && t.Before(l.opts.Since) {
		l.skipping = true
		return nil
	}
	switch l.opts.Stream {
	case "Stdout":
		l.skipping = string(stream) != "stdout"
	case "Stderr":
		l.skipping = string(stream) != "stderr"
	}
	if l.skipping {
		return nil
	}
	if l.opts.Timestamps {
		if err := l.write(append(append([]byte(nil), ts...), ' ')); err != nil {
			return err
		}
	}
	return l.write(text)
}

func (l *lineWriter) write(p []byte) error {
	if l.opts.LimitBytes > 0 {
		left := l.opts.LimitBytes - l.written
		if left <= 0 {
			return errLimit
		}
		if int64(len(p)) > left {
			p = p[:left]
		}
	}
	n, err := l.out.Write(p)
	l.written += int64(n)
	if err != nil {
		return err
	}
	if l.opts.LimitBytes > 0 && l.written >= l.opts.LimitBytes {
		return errLimit
	}
	return nil
}
