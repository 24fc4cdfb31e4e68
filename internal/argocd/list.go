package argocd

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	kruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/client-go/rest"
	sigsjson "sigs.k8s.io/json"
)

// Fast lists of Applications and AppProjects. At 1,000 Applications with their status a list is
// about 5 MB of JSON; decoded by the dynamic client (one object tree per item, sequentially, after
// the whole page arrived) it took longer than the API server took to send it. listFast reads the
// same pages (Limit listPage, the continue token) and
//
//   - asks for the next page as soon as a page is read, before decoding it, so the API server
//     encodes one page while ferry decodes the one before;
//   - decodes a page's items on every CPU at once;
//   - leaves out metadata.managedFields (about a third of an Application's bytes), which nothing
//     that lists Applications or AppProjects reads.
//
// The objects are otherwise those the dynamic client returns (numbers as int64 or float64).

// newRawClient returns the REST client listFast uses, sharing the dynamic client's HTTP client.
func newRawClient(cfg *rest.Config, hc *http.Client) (*rest.RESTClient, error) {
	cfg = rest.CopyConfig(cfg)
	s := kruntime.NewScheme()
	metav1.AddToGroupVersion(s, schema.GroupVersion{Version: "v1"}) // metav1.Status, for API errors
	cfg.NegotiatedSerializer = serializer.NewCodecFactory(s).WithoutConversion()
	cfg.AcceptContentTypes, cfg.ContentType = "application/json", "application/json"
	return rest.UnversionedRESTClientForConfigAndClient(cfg, hc)
}

// fastListed are the kinds listFast lists (their lists' users never read managedFields).
func fastListed(gvr schema.GroupVersionResource) bool {
	return gvr == ApplicationGVR || gvr == AppProjectGVR
}

func (c *Client) listFast(ctx context.Context, gvr schema.GroupVersionResource, selector string) ([]unstructured.Unstructured, error) {
	type page struct {
		body []byte
		err  error
	}
	fetch := func(cont string) page {
		req := c.raw.Get().AbsPath("/apis", gvr.Group, gvr.Version, "namespaces", c.namespace, gvr.Resource).
			Param("limit", strconv.Itoa(listPage))
		if selector != "" {
			req.Param("labelSelector", selector)
		}
		if cont != "" {
			req.Param("continue", cont)
		}
		body, err := req.DoRaw(ctx)
		return page{body, err}
	}
	var out []unstructured.Unstructured
	p := fetch("")
	for {
		if p.err != nil {
			return nil, fmt.Errorf("list %s: %w", gvr.Resource, p.err)
		}
		var l struct {
			APIVersion string            `json:"apiVersion"`
			Kind       string            `json:"kind"`
			Items      []json.RawMessage `json:"items"`
			Metadata   struct {
				Continue string `json:"continue"`
			} `json:"metadata"`
		}
		if err := json.Unmarshal(p.body, &l); err != nil {
			return nil, fmt.Errorf("list %s: decode the answer: %w", gvr.Resource, err)
		}
		var next chan page
		if l.Metadata.Continue != "" {
			next = make(chan page, 1)
			go func(cont string) { next <- fetch(cont) }(l.Metadata.Continue)
		}
		items, err := decodeItems(l.Items, l.APIVersion, strings.TrimSuffix(l.Kind, "List"))
		if err != nil {
			return nil, fmt.Errorf("list %s: decode the answer: %w", gvr.Resource, err)
		}
		out = append(out, items...)
		if next == nil {
			return out, nil
		}
		p = <-next
	}
}

// decodeItems decodes a list's items on every CPU, without metadata.managedFields; an item
// without apiVersion or kind gets the list's.
func decodeItems(raws []json.RawMessage, apiVersion, kind string) ([]unstructured.Unstructured, error) {
	out := make([]unstructured.Unstructured, len(raws))
	workers := min(runtime.GOMAXPROCS(0), (len(raws)+49)/50)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < len(raws); i += workers {
				obj, err := decodeObject(raws[i])
				if err != nil {
					errs[w] = fmt.Errorf("item %d: %w", i, err)
					return
				}
				out[i].Object = obj
				if out[i].GetAPIVersion() == "" {
					out[i].SetAPIVersion(apiVersion)
				}
				if out[i].GetKind() == "" {
					out[i].SetKind(kind)
				}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// decodeObject decodes one object as unstructured does (numbers as int64 where they are integers),
// leaving out metadata.managedFields.
func decodeObject(raw []byte) (map[string]any, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(raw, &top); err != nil {
		return nil, err
	}
	obj := make(map[string]any, len(top))
	for k, v := range top {
		if k == "metadata" {
			var md map[string]json.RawMessage
			if err := json.Unmarshal(v, &md); err != nil {
				return nil, err
			}
			delete(md, "managedFields")
			m := make(map[string]any, len(md))
			for mk, mv := range md {
				var x any
				if err := sigsjson.UnmarshalCaseSensitivePreserveInts(mv, &x); err != nil {
					return nil, err
				}
				m[mk] = x
			}
			obj[k] = m
			continue
		}
		var x any
		if err := sigsjson.UnmarshalCaseSensitivePreserveInts(v, &x); err != nil {
			return nil, err
		}
		obj[k] = x
	}
	return obj, nil
}
