package argocd

import (
	"slices"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// TestOrphanedStringDataKeys: of the keys ferry applied through stringData, those it no longer
// wants are orphans, unless another manager owns them in data or the Secret no longer has them.
func TestOrphanedStringDataKeys(t *testing.T) {
	entry := func(manager string, op metav1.ManagedFieldsOperationType, fields string) metav1.ManagedFieldsEntry {
		return metav1.ManagedFieldsEntry{Manager: manager, Operation: op, FieldsType: "FieldsV1", FieldsV1: metav1.NewFieldsV1(fields)}
	}
	s := &unstructured.Unstructured{Object: map[string]any{
		"data": map[string]any{"url": "dQ==", "insecureOCIForceHttp": "dHJ1ZQ==", "username": "dQ==", "note": "bg==", "shared": "cw=="},
	}}
	s.SetManagedFields([]metav1.ManagedFieldsEntry{
		entry(FieldManager, metav1.ManagedFieldsOperationApply,
			`{"f:stringData":{".":{},"f:url":{},"f:insecureOCIForceHttp":{},"f:username":{},"f:password":{},"f:shared":{}}}`),
		entry("kubectl-edit", metav1.ManagedFieldsOperationUpdate, `{"f:data":{"f:note":{},"f:shared":{}}}`),
		// ferry's own updates are not what it applies.
		entry(FieldManager, metav1.ManagedFieldsOperationUpdate, `{"f:stringData":{"f:note":{}}}`),
	})
	got := orphanedStringDataKeys(s, map[string]string{"url": "u"})
	// url is wanted, password is gone already, shared and note are kubectl-edit's.
	if want := []string{"insecureOCIForceHttp", "username"}; !slices.Equal(got, want) {
		t.Errorf("orphanedStringDataKeys = %v, want %v", got, want)
	}
	s.SetManagedFields([]metav1.ManagedFieldsEntry{entry(FieldManager, metav1.ManagedFieldsOperationApply, `{"f:data":{"f:url":{}}}`)})
	if got := orphanedStringDataKeys(s, nil); len(got) != 0 {
		t.Errorf("with ferry applying data: orphanedStringDataKeys = %v, want none (server-side apply removes those)", got)
	}
}
