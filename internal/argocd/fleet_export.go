package argocd

import (
	"context"
	"encoding/json"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
)

// What the fleet rollout (internal/fleet) needs of the client beyond the sync engine.

// Dynamic returns the client's dynamic client, for objects of the Argo CD namespace the fleet
// manages itself (its rollout Lease).
func (c *Client) Dynamic() dynamic.Interface { return c.dyn }

// SetTargetRevision points the Application name at revision by patching only
// spec.source.targetRevision (a JSON merge patch under ferry's field manager): every other field,
// whoever set it, is kept. It returns the patched Application; a missing one is ErrNotFound.
func (c *Client) SetTargetRevision(ctx context.Context, name, revision string) (*unstructured.Unstructured, error) {
	patch, err := json.Marshal(map[string]any{"spec": map[string]any{"source": map[string]any{"targetRevision": revision}}})
	if err != nil {
		return nil, err
	}
	out, err := c.res(ApplicationGVR).Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: FieldManager})
	if apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("applications %s/%s: %w", c.namespace, name, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("patch applications %s/%s: %w", c.namespace, name, err)
	}
	return out, nil
}

// APIErrorClass is the failure class of an error of an API call ferry made itself: not found,
// forbidden, invalid and the like are permanent, an unreachable or overloaded API server
// transient (as the sync engine classifies its own calls).
func APIErrorClass(err error) Class { return apiErrorClass(err) }
