package bundle

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	"go.yaml.in/yaml/v3"

	"github.com/ferry-dev/terraform-provider-ferry/internal/yamlspec"
)

// renderOutput is the produced file of one render step.
type renderOutput struct {
	record RenderRecord
	data   []byte
}

// runRender runs the render steps of s in dir, in order, each once. A step gets a small, fixed
// environment (PATH, HOME, SOURCE_DATE_EPOCH, FERRY_BUNDLE_NAME, FERRY_BUNDLE_VERSION, FERRY_BUNDLE_DIR
// and its own env) so its output depends on the release, not on the machine.
func runRender(ctx context.Context, dir string, s *Spec, created time.Time) ([]renderOutput, error) {
	absDir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	var outs []renderOutput
	for i, st := range s.Render {
		env := []string{
			"PATH=" + os.Getenv("PATH"),
			"HOME=" + os.Getenv("HOME"),
			"SOURCE_DATE_EPOCH=" + strconv.FormatInt(created.Unix(), 10),
			"FERRY_BUNDLE_NAME=" + s.Name,
			"FERRY_BUNDLE_VERSION=" + s.Version,
			"FERRY_BUNDLE_DIR=" + absDir,
		}
		for _, k := range sortedKeys(st.Env) {
			env = append(env, k+"="+st.Env[k])
		}
		cmd := exec.CommandContext(ctx, st.Command[0], st.Command[1:]...)
		cmd.Dir = filepath.Join(absDir, filepath.FromSlash(st.Dir))
		cmd.Env = env
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			msg := strings.TrimSpace(stderr.String())
			if len(msg) > 2000 {
				msg = msg[len(msg)-2000:]
			}
			if msg != "" {
				msg = ": " + msg
			}
			return nil, fmt.Errorf("render[%d] %s (%s): %w: %v%s", i, st.Name, strings.Join(st.Command, " "), ErrRender, err, msg)
		}
		data := stdout.Bytes()
		if err := checkYAMLObjects(data); err != nil {
			return nil, fmt.Errorf("render[%d] %s: %w: output is not Kubernetes YAML: %v", i, st.Name, ErrRender, err)
		}
		outs = append(outs, renderOutput{
			record: RenderRecord{Name: st.Name, Command: st.Command, Output: st.Output, Digest: digest.FromBytes(data).String()},
			data:   data,
		})
	}
	return outs, nil
}

// checkYAMLObjects checks that data is one or more YAML documents, each empty or a mapping with
// apiVersion and kind.
func checkYAMLObjects(data []byte) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	objects := 0
	for n := 1; ; n++ {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return errors.New(yamlspec.ErrorText(err))
		}
		root := &doc
		if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
			root = root.Content[0]
		}
		if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
			continue
		}
		if !isKubernetesObject(root) {
			return fmt.Errorf("document %d (line %d) is not a Kubernetes object with apiVersion and kind", n, root.Line)
		}
		objects++
	}
	if objects == 0 {
		return errors.New("it printed no objects")
	}
	return nil
}
