package testenv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// crdFile is one CRD as read from the module cache.
type crdFile struct {
	name string // metadata.name
	yaml []byte
}

// crdNameRE finds metadata.name in a CRD file without decoding 1.5 MB of
// YAML (controller-gen writes it with a two-space indent).
var crdNameRE = regexp.MustCompile(`(?m)^metadata:\n(?:  .*\n)*?  name: *["']?([a-z0-9.-]+)["']? *$`)

// readCRDFiles reads the CRD files at paths, each named by its metadata.name.
func readCRDFiles(paths []string) ([]crdFile, error) {
	var files []crdFile
	for _, path := range paths {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, err
		}
		m := crdNameRE.FindSubmatch(b)
		if m == nil {
			return nil, fmt.Errorf("no metadata.name in %s", path)
		}
		files = append(files, crdFile{name: string(m[1]), yaml: b})
	}
	return files, nil
}

// installCRDs creates crds in c, in parallel, and waits until those wait
// selects are established. The YAML goes to the API server as is (decoding
// it here costs seconds under the race detector), with a plain create, which
// is much cheaper than a server-side apply of large schemas; an existing CRD
// (a shared cluster may have it already) is applied over.
func (c *Cluster) installCRDs(ctx context.Context, crds []crdFile, wait func(name string) bool) error {
	errs := make([]error, len(crds))
	var wg sync.WaitGroup
	for i, crd := range crds {
		wg.Go(func() {
			err := c.postYAML(ctx, "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", crd.yaml)
			if apierrors.IsAlreadyExists(err) {
				var objs []*unstructured.Unstructured
				if objs, err = DecodeManifests(string(crd.yaml)); err == nil {
					_, err = c.applyObjects(ctx, objs)
				}
			}
			if err != nil {
				errs[i] = fmt.Errorf("install CRD %s: %w", crd.name, err)
				return
			}
			if !wait(crd.name) {
				return
			}
			_, errs[i] = c.waitFor(ctx, "apiextensions.k8s.io/v1", "CustomResourceDefinition", "", crd.name,
				func(obj *unstructured.Unstructured) bool { return conditionTrue(obj, "Established") }, time.Minute)
			tracef("CRD %s established", crd.name)
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}
