package argocd

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
)

// applySecret server-side-applies the Secret name of type secretType (the Argo CD secret-type
// label) holding exactly data.
//
// Ownership is server-side apply's: the API server removes a key ferry applied before and no
// longer applies (plain_http turned off, an optional key unset) unless another field manager
// also owns it, and leaves keys other managers wrote alone. The values go into data, not
// stringData: the API server merges stringData into data on write and records ferry's ownership of
// the stringData keys only, so a key ferry stopped applying stayed in data, owned by nobody
// (kubernetes/kubernetes#108008). Secrets written that way by earlier ferry versions are
// cleaned up first (dropOrphanedStringData).
func (c *Client) applySecret(ctx context.Context, name, secretType string, labels map[string]string, data map[string]string) error {
	if err := c.dropOrphanedStringData(ctx, name, data); err != nil {
		return err
	}
	labels = maps.Clone(labels)
	labels[LabelSecretType] = secretType
	s := newObject("v1", "Secret", name, labels)
	s.Object["type"] = "Opaque"
	encoded := map[string]any{}
	for k, v := range data {
		encoded[k] = base64.StdEncoding.EncodeToString([]byte(v))
	}
	s.Object["data"] = encoded
	_, err := c.apply(ctx, SecretGVR, s)
	return err
}

// dropOrphanedStringData removes from the live Secret name the keys ferry once applied through
// stringData and does not want now (keys of want are kept), unless another manager owns them in
// data: the API server would never remove them (see applySecret).
func (c *Client) dropOrphanedStringData(ctx context.Context, name string, want map[string]string) error {
	s, err := c.get(ctx, SecretGVR, name)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	orphans := orphanedStringDataKeys(s, want)
	if len(orphans) == 0 {
		return nil
	}
	remove := map[string]any{}
	for _, k := range orphans {
		remove[k] = nil
	}
	patch, err := json.Marshal(map[string]any{"data": remove})
	if err != nil {
		return err
	}
	if _, err := c.res(SecretGVR).Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: FieldManager}); err != nil {
		return fmt.Errorf("remove keys %s ferry no longer writes from Secret %s/%s: %w", strings.Join(orphans, ", "), c.namespace, name, err)
	}
	return nil
}

// orphanedStringDataKeys returns, sorted, the keys of s's data that ferry's apply owns only as
// stringData, that are not in want, and that no manager owns in data.
func orphanedStringDataKeys(s *unstructured.Unstructured, want map[string]string) []string {
	live, _, _ := unstructured.NestedMap(s.Object, "data")
	ferry, ownedInData := map[string]bool{}, map[string]bool{}
	for _, mf := range s.GetManagedFields() {
		if mf.FieldsV1 == nil {
			continue
		}
		var fields map[string]map[string]any
		if json.Unmarshal(mf.FieldsV1.GetRawBytes(), &fields) != nil {
			continue
		}
		for k := range fields["f:data"] {
			ownedInData[strings.TrimPrefix(k, "f:")] = true
		}
		if mf.Manager == FieldManager && mf.Operation == metav1.ManagedFieldsOperationApply {
			for k := range fields["f:stringData"] {
				ferry[strings.TrimPrefix(k, "f:")] = true
			}
		}
	}
	var out []string
	for k := range ferry {
		if _, wanted := want[k]; !wanted && live[k] != nil && !ownedInData[k] {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}
