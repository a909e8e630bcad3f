package collect

import (
	"strconv"

	"github.com/kairn-dev/kairn/link"
)

// eventObservation turns a core/v1 or events.k8s.io/v1 Event object into an observation on the
// object it is about. It prefers eventTime (microseconds) over firstTimestamp (seconds); the
// linker later replaces either with the audited creation time where there is one.
func eventObservation(cluster string, body map[string]any) (link.Observation, bool) {
	apiVersion := str(body["apiVersion"])
	meta, _ := body["metadata"].(map[string]any)
	if meta == nil {
		return link.Observation{}, false
	}
	newAPI := link.GroupOf(apiVersion) == "events.k8s.io"
	var about map[string]any
	if newAPI {
		about, _ = body["regarding"].(map[string]any)
	} else {
		about, _ = body["involvedObject"].(map[string]any)
	}
	if about == nil {
		return link.Observation{}, false
	}
	aboutGroup := link.GroupOf(str(about["apiVersion"]))
	aboutKind := str(about["kind"])
	obs := link.Observation{
		Source: link.SourceEvent,
		Object: link.ObjectKey{
			Cluster:   cluster,
			Group:     aboutGroup,
			Resource:  link.ResourceFor(aboutGroup, aboutKind),
			Namespace: str(about["namespace"]),
			Name:      str(about["name"]),
			UID:       str(about["uid"]),
		},
		Kind: aboutKind,
		Carrier: link.ObjectKey{
			Cluster: cluster, Resource: "events",
			Namespace: str(meta["namespace"]), Name: str(meta["name"]), UID: str(meta["uid"]),
		},
		Reason:          str(body["reason"]),
		EventType:       str(body["type"]),
		ResourceVersion: str(meta["resourceVersion"]),
	}
	// The newest managedFields entry is who wrote this revision and when (seconds): what pairs
	// an Event with a Metadata-level audit record of its creation, which has no name when the
	// reporter used generateName.
	if mf, ok := meta["managedFields"].([]any); ok {
		for _, e := range mf {
			m, _ := e.(map[string]any)
			if t := parseTime(m["time"]); !t.Before(obs.ManagerTime) {
				obs.ManagerTime, obs.Manager = t, str(m["manager"])
			}
		}
	}
	series, _ := body["series"].(map[string]any)
	var first, last, eventTime any
	var count float64
	if newAPI {
		obs.Message = str(body["note"])
		obs.Reporter = str(body["reportingController"])
		first, last, eventTime = body["deprecatedFirstTimestamp"], body["deprecatedLastTimestamp"], body["eventTime"]
		count, _ = body["deprecatedCount"].(float64)
	} else {
		obs.Message = str(body["message"])
		obs.Reporter = str(body["reportingComponent"])
		if src, ok := body["source"].(map[string]any); ok && obs.Reporter == "" {
			obs.Reporter = str(src["component"])
		}
		first, last, eventTime = body["firstTimestamp"], body["lastTimestamp"], body["eventTime"]
		count, _ = body["count"].(float64)
	}
	if series != nil {
		if c, ok := series["count"].(float64); ok && c > count {
			count = c
		}
	}
	obs.Count = int32(count)
	// A repeat of an Event is a fact of its own, at its last-seen time.
	repeat := count > 1
	switch {
	case repeat && series != nil && !parseTime(series["lastObservedTime"]).IsZero():
		obs.Time, obs.TimeSource = parseTime(series["lastObservedTime"]), "eventTime"
	case repeat && !parseTime(last).IsZero():
		obs.Time, obs.TimeSource = parseTime(last), "lastTimestamp"
	case !parseTime(eventTime).IsZero():
		obs.Time, obs.TimeSource = parseTime(eventTime), "eventTime"
	case !parseTime(first).IsZero():
		obs.Time, obs.TimeSource = parseTime(first), "firstTimestamp"
	case !parseTime(last).IsZero():
		obs.Time, obs.TimeSource = parseTime(last), "lastTimestamp"
	default:
		obs.Time, obs.TimeSource = parseTime(meta["creationTimestamp"]), "creationTimestamp"
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
