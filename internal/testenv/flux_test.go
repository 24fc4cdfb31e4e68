package testenv_test

import (
	"archive/tar"
	"compress/gzip"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ferry-dev/terraform-provider-ferry/internal/testenv"
)

// TestFluxOption starts an environment with Options.Flux and has the source-controller fetch an
// image from the plain-HTTP registry through an OCIRepository (insecure, by digest, no layer
// selector: layers[0], extracted): Ready, the revision is the digest, and the artifact server
// serves the layer's file. Stopping the environment stops the source-controller.
func TestFluxOption(t *testing.T) {
	e := testenv.Start(t, testenv.Options{Registry: true, Flux: true})
	if e.Flux == nil || e.Cluster == nil || e.ArgoCD != nil {
		t.Fatalf("Start(Flux) = Flux %v, Cluster %v, ArgoCD %v; want Flux and the cluster it implies, no Argo CD", e.Flux, e.Cluster, e.ArgoCD)
	}
	// Runs after the namespace's cleanup: stopping the environment stops the source-controller.
	t.Cleanup(func() {
		if pids := e.Flux.PIDs(); len(pids) != 1 {
			t.Errorf("Flux PIDs = %v, want the source-controller", pids)
		}
		if err := e.Stop(); err != nil {
			t.Error(err)
		}
		testenv.CheckNoLeaks(t)
	})
	img := e.Registry.PushImage(t, "flux/seed", "1.0", "flux")
	ns := e.Cluster.CreateNamespace(t, "flux")
	e.Cluster.Apply(t, `apiVersion: source.toolkit.fluxcd.io/v1
kind: OCIRepository
metadata: {name: seed, namespace: `+ns+`}
spec:
  interval: 10m
  url: oci://`+e.Registry.Addr+`/flux/seed
  ref: {digest: "`+img.Digest.String()+`"}
  insecure: true
`)
	src := e.Cluster.WaitFor(t, "source.toolkit.fluxcd.io/v1", "OCIRepository", ns, "seed", testenv.SourceReady, 2*time.Minute)
	if rev := str(src, "status", "artifact", "revision"); !strings.HasSuffix(rev, img.Digest.String()) {
		t.Errorf("artifact revision = %q, want it to name %s", rev, img.Digest)
	}
	u := str(src, "status", "artifact", "url")
	if !strings.HasPrefix(u, "http://"+e.Flux.StorageAddr+"/") {
		t.Fatalf("artifact url = %q, want the source-controller's artifact server %s", u, e.Flux.StorageAddr)
	}
	resp, err := (&http.Client{Transport: &http.Transport{Proxy: nil}}).Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	zr, err := gzip.NewReader(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	found := false
	for tr := tar.NewReader(zr); ; {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("GET %s: %v", u, err)
		}
		if strings.TrimPrefix(h.Name, "./") == testenv.SeedFile {
			b, _ := io.ReadAll(tr)
			found = string(b) == testenv.SeedContent("flux", "linux/amd64")
		}
	}
	if !found {
		t.Errorf("artifact %s lacks %s with the image's content", u, testenv.SeedFile)
	}

}
