package apiserver

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer/streaming"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/havre/havre/internal/storage"
)

// defaultWatchTimeout ends watches that did not ask for a timeout, so
// clients re-establish them now and then, as kube-apiserver does.
const defaultWatchTimeout = 30 * time.Minute

// watchStream writes watch events in the negotiated framing.
type watchStream struct {
	w       http.ResponseWriter
	flusher http.Flusher
	out     outputFormat
	enc     streaming.Encoder
	topts   tableOptionsT
	h       *resourceHandler
}

// encode serialises one event object in the stream's media type.
func (s *watchStream) encode(typ watch.EventType, obj runtime.Object) ([]byte, error) {
	switch {
	case typ == watch.Error:
	case s.out.table && typ != watch.Bookmark:
		t, err := toTable(obj.DeepCopyObject(), s.topts)
		if err != nil {
			return nil, err
		}
		obj = t
	case s.out.metadata:
		obj = partialMetadata(obj)
	}
	gv, err := groupVersionOf(obj)
	if err != nil {
		return nil, err
	}
	return runtime.Encode(encoderFor(s.out.info.Serializer, obj, gv), obj)
}

func (s *watchStream) send(typ watch.EventType, obj runtime.Object) error {
	raw, err := s.encode(typ, obj)
	if err != nil {
		return err
	}
	return s.sendRaw(typ, raw)
}

// sendVersion sends a stored version, sharing its encoding with the other
// watchers through the event cache (Tables are per request and not shared).
func (s *watchStream) sendVersion(typ watch.EventType, v *cachedVersion) error {
	if s.out.table {
		return s.send(typ, v.obj)
	}
	key := s.out.info.MediaType
	if s.out.metadata {
		key += ";as=PartialObjectMetadata"
	}
	// The decoded object is shared by every watcher (and read by their
	// selectors); the versioning encoder sets the kind on what it encodes,
	// so it gets a copy.
	raw, err := v.encoded(key, func(obj runtime.Object) ([]byte, error) { return s.encode(typ, obj.DeepCopyObject()) })
	if err != nil {
		return err
	}
	return s.sendRaw(typ, raw)
}

func (s *watchStream) sendRaw(typ watch.EventType, raw []byte) error {
	if err := s.enc.Encode(&metav1.WatchEvent{Type: string(typ), Object: runtime.RawExtension{Raw: raw}}); err != nil {
		return err
	}
	s.flusher.Flush()
	return nil
}

// bookmark sends a BOOKMARK carrying only a resourceVersion (and for the
// end of a watch-list's initial events, the annotation saying so).
func (s *watchStream) bookmark(rev int64, initialEventsEnd bool) error {
	obj := s.h.objs.newObject()
	acc, _ := meta.Accessor(obj)
	acc.SetResourceVersion(strconv.FormatInt(rev, 10))
	if initialEventsEnd {
		acc.SetAnnotations(map[string]string{metav1.InitialEventsAnnotationKey: "true"})
	}
	return s.send(watch.Bookmark, obj)
}

func (h *resourceHandler) serveWatch(w http.ResponseWriter, r *http.Request, info requestInfo) {
	opts, err := listOptions(r)
	if err != nil {
		writeError(w, err)
		return
	}
	pred, err := h.predicate(opts)
	if err != nil {
		writeError(w, err)
		return
	}
	if err := validateWatchOptions(opts); err != nil {
		writeError(w, err)
		return
	}
	rv, err := parseResourceVersion(opts.ResourceVersion)
	if err != nil {
		writeError(w, err)
		return
	}
	out, err := negotiateOutput(r)
	if err == nil && h.custom != nil && !out.table && !out.metadata && out.info.MediaType == mediaProtobuf {
		out, err = negotiateOutputJSONOrYAML(r)
	}
	if err != nil {
		writeError(w, err)
		return
	}
	if out.info.StreamSerializer == nil {
		writeError(w, errNotAcceptable(r.Header.Get("Accept")))
		return
	}
	flusher, ok := w.(http.Flusher)
	if !ok {
		writeError(w, errors.New("streaming unsupported"))
		return
	}
	timeout := defaultWatchTimeout
	if opts.TimeoutSeconds != nil && *opts.TimeoutSeconds > 0 {
		timeout = time.Duration(*opts.TimeoutSeconds) * time.Second
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()

	// Decide where the stream starts and whether the current state is sent
	// first as synthetic ADDED events.
	sendInitial := rv == 0
	if opts.SendInitialEvents != nil {
		sendInitial = *opts.SendInitialEvents
	}
	var initial runtime.Object
	start := rv
	if sendInitial {
		lopts := metav1.ListOptions{LabelSelector: opts.LabelSelector, FieldSelector: opts.FieldSelector}
		if rv > 0 {
			lopts.ResourceVersion = opts.ResourceVersion
		}
		initial, err = h.list(ctx, info.namespace, lopts)
		if err != nil {
			writeError(w, err)
			return
		}
		lacc, _ := meta.ListAccessor(initial)
		start, _ = strconv.ParseInt(lacc.GetResourceVersion(), 10, 64)
	}
	events, werr := h.objs.store.Watch(ctx, h.objs.listPrefix(info.namespace), start,
		storage.WatchOptions{ProgressNotify: opts.AllowWatchBookmarks})
	if werr != nil && !errors.Is(werr, storage.ErrCompacted) {
		writeError(w, h.objs.storageError(werr, ""))
		return
	}

	framer := out.info.StreamSerializer.Framer.NewFrameWriter(w)
	s := &watchStream{w: w, flusher: flusher, out: out, h: h, topts: tableOptions(r, out),
		enc: streaming.NewEncoder(framer, out.info.StreamSerializer.Serializer)}
	contentType := out.info.MediaType
	if out.info.MediaType == mediaProtobuf {
		contentType = mediaProtobuf + ";stream=watch"
	}
	w.Header().Set("Content-Type", contentType)
	w.Header().Set("Transfer-Encoding", "chunked")
	w.WriteHeader(http.StatusOK)
	flusher.Flush()

	if werr != nil { // compacted: an ERROR event, as kube-apiserver sends
		_, compacted, _ := h.objs.store.Revision(ctx)
		st := apierrors.NewResourceExpired(fmt.Sprintf("too old resource version: %d (%d)", start, compacted)).ErrStatus
		_ = s.send(watch.Error, &st)
		return
	}
	if initial != nil {
		items, _ := meta.ExtractList(initial)
		for _, item := range items {
			if err := s.send(watch.Added, item); err != nil {
				return
			}
		}
		if opts.SendInitialEvents != nil && *opts.SendInitialEvents {
			if err := s.bookmark(start, true); err != nil {
				return
			}
		}
	}
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-events:
			if !ok {
				return
			}
			if err := h.sendEvent(s, ev, pred, opts.AllowWatchBookmarks); err != nil {
				return
			}
		}
	}
}

// sendEvent translates one store event into zero or one watch events,
// following objects in and out of the selector as kube-apiserver does.
func (h *resourceHandler) sendEvent(s *watchStream, ev storage.Event, pred predicate, bookmarks bool) error {
	switch ev.Type {
	case storage.Progress:
		if bookmarks {
			return s.bookmark(ev.Revision, false)
		}
		return nil
	case storage.Error:
		st := toStatus(h.objs.storageError(ev.Err, ""))
		if errors.Is(ev.Err, storage.ErrCompacted) {
			st = apierrors.NewResourceExpired("too old resource version").ErrStatus
		}
		_ = s.send(watch.Error, &st)
		return ev.Err
	}
	obj, version, err := h.events.decode(h.objs, ev.KV)
	if err != nil {
		return err
	}
	matches := pred.matches(obj)
	var prevMatches bool
	if ev.PrevKV != nil && !pred.empty() {
		prev, _, err := h.events.decode(h.objs, *ev.PrevKV)
		if err != nil {
			return err
		}
		prevMatches = pred.matches(prev)
	} else {
		prevMatches = ev.PrevKV != nil
	}
	switch ev.Type {
	case storage.Created:
		if matches {
			return s.sendVersion(watch.Added, version)
		}
	case storage.Updated:
		switch {
		case matches && prevMatches:
			return s.sendVersion(watch.Modified, version)
		case matches:
			return s.sendVersion(watch.Added, version)
		case prevMatches:
			return s.sendVersion(watch.Deleted, version)
		}
	case storage.Deleted:
		if matches || prevMatches {
			return s.sendVersion(watch.Deleted, version)
		}
	}
	return nil
}

// validateWatchOptions applies kube-apiserver's rules for watch-list.
func validateWatchOptions(opts metav1.ListOptions) error {
	if opts.SendInitialEvents == nil {
		if opts.ResourceVersionMatch != "" && opts.ResourceVersionMatch != metav1.ResourceVersionMatchNotOlderThan {
			return apierrors.NewInvalid(metaV1.WithKind("ListOptions").GroupKind(), "", field.ErrorList{
				field.Forbidden(field.NewPath("resourceVersionMatch"), "resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided")})
		}
		return nil
	}
	var errs field.ErrorList
	if opts.ResourceVersionMatch != metav1.ResourceVersionMatchNotOlderThan {
		errs = append(errs, field.Forbidden(field.NewPath("resourceVersionMatch"),
			fmt.Sprintf("sendInitialEvents requires setting resourceVersionMatch to %s", metav1.ResourceVersionMatchNotOlderThan)))
	}
	if *opts.SendInitialEvents && !opts.AllowWatchBookmarks {
		errs = append(errs, field.Forbidden(field.NewPath("allowWatchBookmarks"), "sendInitialEvents requires setting allowWatchBookmarks to true"))
	}
	if len(errs) > 0 {
		return apierrors.NewInvalid(metaV1.WithKind("ListOptions").GroupKind(), "", errs)
	}
	return nil
}
