package collect

import (
	"strconv"
	"time"

	"github.com/kairn-dev/kairn/internal/jsonscan"
	"github.com/kairn-dev/kairn/link"
)

// eventObservation turns a core/v1 or events.k8s.io/v1 Event object into an observation on the
// object it is about. It prefers eventTime (microseconds) over firstTimestamp (seconds); the
// linker later replaces either with the audited creation time where there is one.
func eventObservation(cluster string, body map[string]any) (link.Observation, bool) {
	return eventFromMap(body).observation(cluster)
}

// eventFields is what an Event observation takes from an Event object. Like objMeta, it is read
// either from a decoded map (eventFromMap) or straight from the JSON (eventFromRaw), with the
// same result: the JSON decoded into a map, then read with type assertions (a value of another
// type reads as absent, the last of duplicate keys wins). Both API versions' fields are kept:
// apiVersion, which picks between them, may come last.
type eventFields struct {
	meta                                objMeta
	regarding, involvedObject           eventRef
	reason, typ                         string
	note, reportingController           string // events.k8s.io
	message, reportingComponent, source string // core; source is source.component
	eventTime                           time.Time
	deprecatedFirst, deprecatedLast     time.Time // events.k8s.io
	first, last                         time.Time // core
	deprecatedCount, count              float64
	series                              eventSeries
}

// eventRef is the object an Event is about.
type eventRef struct {
	present                                bool // an object
	apiVersion, kind, namespace, name, uid string
}

type eventSeries struct {
	present          bool // an object
	count            float64
	lastObservedTime time.Time
}

func eventFromMap(body map[string]any) eventFields {
	e := eventFields{
		meta:                metaFromMap(body),
		regarding:           eventRefFromMap(body["regarding"]),
		involvedObject:      eventRefFromMap(body["involvedObject"]),
		reason:              str(body["reason"]),
		typ:                 str(body["type"]),
		note:                str(body["note"]),
		reportingController: str(body["reportingController"]),
		message:             str(body["message"]),
		reportingComponent:  str(body["reportingComponent"]),
		eventTime:           parseTime(body["eventTime"]),
		deprecatedFirst:     parseTime(body["deprecatedFirstTimestamp"]),
		deprecatedLast:      parseTime(body["deprecatedLastTimestamp"]),
		first:               parseTime(body["firstTimestamp"]),
		last:                parseTime(body["lastTimestamp"]),
	}
	e.deprecatedCount, _ = body["deprecatedCount"].(float64)
	e.count, _ = body["count"].(float64)
	if src, ok := body["source"].(map[string]any); ok {
		e.source = str(src["component"])
	}
	if s, ok := body["series"].(map[string]any); ok {
		e.series.present = true
		e.series.count, _ = s["count"].(float64)
		e.series.lastObservedTime = parseTime(s["lastObservedTime"])
	}
	return e
}

func eventRefFromMap(v any) eventRef {
	m, ok := v.(map[string]any)
	if !ok {
		return eventRef{}
	}
	return eventRef{
		present: true, apiVersion: str(m["apiVersion"]), kind: str(m["kind"]),
		namespace: str(m["namespace"]), name: str(m["name"]), uid: str(m["uid"]),
	}
}

// eventFromRaw is eventFromMap on an Event's JSON, validated before (errors read as absent).
func eventFromRaw(raw []byte) eventFields {
	var e eventFields
	jsonscan.Object(raw, 0, func(key []byte, v int) (int, error) {
		if end, ok, err := e.meta.topField(raw, key, v); ok {
			return end, err
		}
		var end int
		var err error
		switch string(key) {
		case "regarding":
			e.regarding, end, err = rawEventRef(raw, v)
		case "involvedObject":
			e.involvedObject, end, err = rawEventRef(raw, v)
		case "reason":
			e.reason, end, err = rawString(raw, v)
		case "type":
			e.typ, end, err = rawString(raw, v)
		case "note":
			e.note, end, err = rawString(raw, v)
		case "reportingController":
			e.reportingController, end, err = rawString(raw, v)
		case "message":
			e.message, end, err = rawString(raw, v)
		case "reportingComponent":
			e.reportingComponent, end, err = rawString(raw, v)
		case "eventTime":
			e.eventTime, end, err = rawTime(raw, v)
		case "deprecatedFirstTimestamp":
			e.deprecatedFirst, end, err = rawTime(raw, v)
		case "deprecatedLastTimestamp":
			e.deprecatedLast, end, err = rawTime(raw, v)
		case "firstTimestamp":
			e.first, end, err = rawTime(raw, v)
		case "lastTimestamp":
			e.last, end, err = rawTime(raw, v)
		case "deprecatedCount":
			e.deprecatedCount, end, err = rawNumber(raw, v)
		case "count":
			e.count, end, err = rawNumber(raw, v)
		case "source":
			e.source = ""
			if raw[v] != '{' {
				return jsonscan.SkipValid(raw, v)
			}
			end, err = jsonscan.Object(raw, v, func(key []byte, v int) (int, error) {
				if string(key) == "component" {
					var end int
					var err error
					e.source, end, err = rawString(raw, v)
					return end, err
				}
				return jsonscan.SkipValid(raw, v)
			})
		case "series":
			e.series = eventSeries{}
			if raw[v] != '{' {
				return jsonscan.SkipValid(raw, v)
			}
			e.series.present = true
			end, err = jsonscan.Object(raw, v, func(key []byte, v int) (int, error) {
				var end int
				var err error
				switch string(key) {
				case "count":
					e.series.count, end, err = rawNumber(raw, v)
				case "lastObservedTime":
					e.series.lastObservedTime, end, err = rawTime(raw, v)
				default:
					end, err = jsonscan.SkipValid(raw, v)
				}
				return end, err
			})
		default:
			end, err = jsonscan.SkipValid(raw, v)
		}
		return end, err
	})
	return e
}

func rawEventRef(raw []byte, v int) (eventRef, int, error) {
	if raw[v] != '{' {
		end, err := jsonscan.SkipValid(raw, v)
		return eventRef{}, end, err
	}
	r := eventRef{present: true}
	end, err := jsonscan.Object(raw, v, func(key []byte, v int) (int, error) {
		var end int
		var err error
		switch string(key) {
		case "apiVersion":
			r.apiVersion, end, err = rawString(raw, v)
		case "kind":
			r.kind, end, err = rawString(raw, v)
		case "namespace":
			r.namespace, end, err = rawString(raw, v)
		case "name":
			r.name, end, err = rawString(raw, v)
		case "uid":
			r.uid, end, err = rawString(raw, v)
		default:
			end, err = jsonscan.SkipValid(raw, v)
		}
		return end, err
	})
	return r, end, err
}

// observation is the observation the Event makes on the object it is about, if it names one.
func (e eventFields) observation(cluster string) (link.Observation, bool) {
	if !e.meta.hasMeta {
		return link.Observation{}, false
	}
	newAPI := link.GroupOf(e.meta.apiVersion) == "events.k8s.io"
	about := e.involvedObject
	if newAPI {
		about = e.regarding
	}
	if !about.present {
		return link.Observation{}, false
	}
	aboutGroup := link.GroupOf(about.apiVersion)
	obs := link.Observation{
		Source: link.SourceEvent,
		Object: link.ObjectKey{
			Cluster:   cluster,
			Group:     aboutGroup,
			Resource:  link.ResourceFor(aboutGroup, about.kind),
			Namespace: about.namespace,
			Name:      about.name,
			UID:       about.uid,
		},
		Kind: about.kind,
		Carrier: link.ObjectKey{
			Cluster: cluster, Resource: "events",
			Namespace: e.meta.namespace, Name: e.meta.name, UID: e.meta.uid,
		},
		Reason:          e.reason,
		EventType:       e.typ,
		ResourceVersion: e.meta.rv,
		// The newest managedFields entry is who wrote this revision and when (seconds): what
		// pairs an Event with a Metadata-level audit record of its creation, which has no name
		// when the reporter used generateName.
		Manager:     e.meta.manager,
		ManagerTime: e.meta.managerTime,
	}
	var first, last time.Time
	var count float64
	if newAPI {
		obs.Message, obs.Reporter = e.note, e.reportingController
		first, last, count = e.deprecatedFirst, e.deprecatedLast, e.deprecatedCount
	} else {
		obs.Message, obs.Reporter = e.message, e.reportingComponent
		if obs.Reporter == "" {
			obs.Reporter = e.source
		}
		first, last, count = e.first, e.last, e.count
	}
	if e.series.present && e.series.count > count {
		count = e.series.count
	}
	obs.Count = int32(count)
	// A repeat of an Event is a fact of its own, at its last-seen time.
	repeat := count > 1
	switch {
	case repeat && e.series.present && !e.series.lastObservedTime.IsZero():
		obs.Time, obs.TimeSource = e.series.lastObservedTime, "eventTime"
	case repeat && !last.IsZero():
		obs.Time, obs.TimeSource = last, "lastTimestamp"
	case !e.eventTime.IsZero():
		obs.Time, obs.TimeSource = e.eventTime, "eventTime"
	case !first.IsZero():
		obs.Time, obs.TimeSource = first, "firstTimestamp"
	case !last.IsZero():
		obs.Time, obs.TimeSource = last, "lastTimestamp"
	default:
		obs.Time, obs.TimeSource = e.meta.created, "creationTimestamp"
	}
	id := obs.ResourceVersion
	if id == "" {
		id = "n" + strconv.Itoa(int(count))
	}
	obs.ID = "event/" + obs.Carrier.UID + "/" + id
	if obs.Carrier.UID == "" {
		obs.ID = "event/" + obs.Carrier.Namespace + "/" + obs.Carrier.Name + "/" + id
	}
	return obs, obs.Object.Name != ""
}
