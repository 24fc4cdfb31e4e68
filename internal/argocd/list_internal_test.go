package argocd

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// TestDecodeItems: listFast's items are what the dynamic client decodes (integers as int64,
// other numbers as float64, nested maps and lists), without metadata.managedFields, in order;
// an item without apiVersion or kind gets the list's; a broken item is an error.
func TestDecodeItems(t *testing.T) {
	item := func(i int) string {
		return fmt.Sprintf(`{"apiVersion":"argoproj.io/v1alpha1","kind":"Application","metadata":{"name":"app-%03d","generation":%d,
"labels":{"ferry.dev/environment":"e"},"managedFields":[{"manager":"ferry","operation":"Apply","fieldsV1":{"f:spec":{}}}]},
"spec":{"project":"e","source":{"repoURL":"oci://r/x","targetRevision":"sha256:ab"},"weight":1.5,"list":[1,"a",null,true,{"k":[]}]},
"status":{"sync":{"status":"Synced"},"history":[{"id":%d,"revision":"sha256:ab"}]}}`, i, i+1, i)
	}
	var raws []json.RawMessage
	for i := range 130 {
		raws = append(raws, json.RawMessage(item(i)))
	}
	raws = append(raws, json.RawMessage(`{"metadata":{"name":"bare"}}`))
	got, err := decodeItems(raws, "argoproj.io/v1alpha1", "Application")
	if err != nil {
		t.Fatal(err)
	}
	for i, raw := range raws {
		var want unstructured.Unstructured
		if i == len(raws)-1 {
			raw = json.RawMessage(`{"apiVersion":"argoproj.io/v1alpha1","kind":"Application","metadata":{"name":"bare"}}`)
		}
		if err := want.UnmarshalJSON(raw); err != nil {
			t.Fatal(err)
		}
		unstructured.RemoveNestedField(want.Object, "metadata", "managedFields")
		if !reflect.DeepEqual(got[i].Object, want.Object) {
			t.Fatalf("item %d:\n got %#v\nwant %#v", i, got[i].Object, want.Object)
		}
	}
	if _, err := decodeItems([]json.RawMessage{json.RawMessage(item(0)), json.RawMessage(`{"metadata":[}`)}, "v1", "X"); err == nil || !strings.Contains(err.Error(), "item 1") {
		t.Errorf("broken item: error %v, want one naming item 1", err)
	}
}
