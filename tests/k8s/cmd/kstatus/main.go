// Command kstatus prints, for each Kubernetes object read from stdin (JSON or
// YAML, one or more documents, List kinds expanded), how three GitOps health
// gates see it, as one JSON line per object:
//
//   - kstatus: sigs.k8s.io/cli-utils' status.Compute (Flux's default health
//     check, `kubectl wait`-style gates, cli-utils' applier);
//   - argocd (with -argocd FILE): a custom health Lua script, run the way
//     Argo CD runs resource.customizations.health.* entries;
//   - flux (with -flux FILE): the matching spec.healthCheckExprs entry of a
//     Flux Kustomization, evaluated the way kustomize-controller does.
//
// It exists so the tests check the shipped health checks with the libraries
// those tools use, not with a reimplementation in Python.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/ext"
	lua "github.com/yuin/gopher-lua"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/yaml"
)

type verdict struct {
	Status  string `json:"status"`
	Message string `json:"message,omitempty"`
	Error   string `json:"error,omitempty"`
}

type report struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Namespace  string   `json:"namespace,omitempty"`
	Name       string   `json:"name"`
	Generation int64    `json:"generation"`
	KStatus    verdict  `json:"kstatus"`
	ArgoCD     *verdict `json:"argocd,omitempty"`
	Flux       *verdict `json:"flux,omitempty"`
}

func main() {
	argoPath := flag.String("argocd", "", "Argo CD health Lua script")
	fluxPath := flag.String("flux", "", "YAML with a Flux Kustomization whose spec.healthCheckExprs to evaluate")
	flag.Parse()
	if err := run(*argoPath, *fluxPath, os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "kstatus:", err)
		os.Exit(1)
	}
}

func run(argoPath, fluxPath string, in io.Reader, out io.Writer) error {
	var script string
	if argoPath != "" {
		data, err := os.ReadFile(argoPath)
		if err != nil {
			return err
		}
		script = string(data)
	}
	var checks map[schema.GroupKind]*fluxCheck
	if fluxPath != "" {
		var err error
		if checks, err = loadFlux(fluxPath); err != nil {
			return err
		}
	}
	objects, err := readObjects(in)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(out)
	for _, u := range objects {
		r := report{
			APIVersion: u.GetAPIVersion(), Kind: u.GetKind(), Namespace: u.GetNamespace(),
			Name: u.GetName(), Generation: u.GetGeneration(), KStatus: computeKStatus(u),
		}
		if argoPath != "" {
			v := argoHealth(u, script)
			r.ArgoCD = &v
		}
		if fluxPath != "" {
			v := fluxHealth(u, checks)
			r.Flux = &v
		}
		if err := enc.Encode(r); err != nil {
			return err
		}
	}
	return nil
}

// readObjects decodes a YAML/JSON stream through UnstructuredJSONScheme, which
// keeps integers as int64 the way objects from the API server are (kstatus
// reads observedGeneration with NestedInt64 and rejects float64).
func readObjects(in io.Reader) ([]*unstructured.Unstructured, error) {
	var objects []*unstructured.Unstructured
	decoder := utilyaml.NewYAMLOrJSONDecoder(bufio.NewReader(in), 4096)
	for {
		var raw json.RawMessage
		if err := decoder.Decode(&raw); err != nil {
			if errors.Is(err, io.EOF) {
				return objects, nil
			}
			return nil, err
		}
		if len(raw) == 0 || string(raw) == "null" {
			continue
		}
		obj, err := runtime.Decode(unstructured.UnstructuredJSONScheme, raw)
		if err != nil {
			return nil, err
		}
		switch o := obj.(type) {
		case *unstructured.UnstructuredList:
			for i := range o.Items {
				objects = append(objects, &o.Items[i])
			}
		case *unstructured.Unstructured:
			objects = append(objects, o)
		}
	}
}

func computeKStatus(u *unstructured.Unstructured) verdict {
	res, err := status.Compute(u)
	if err != nil {
		return verdict{Status: status.UnknownStatus.String(), Error: err.Error()}
	}
	return verdict{Status: res.Status.String(), Message: res.Message}
}

// argoHealth mirrors Argo CD's util/lua VM for configured health scripts:
// without useOpenLibs only the package, base and table libraries are open (no
// string or math: a script relying on them fails in Argo CD, and so here), the
// object is global `obj`, and the returned table's status must be one of
// Argo CD's health codes. Argo CD also opens a reduced `os`; the shipped
// script does not use it, so it is left out rather than reimplemented.
func argoHealth(u *unstructured.Unstructured, script string) verdict {
	l := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer l.Close()
	for _, lib := range []struct {
		name string
		open lua.LGFunction
	}{
		{lua.LoadLibName, lua.OpenPackage},
		{lua.BaseLibName, lua.OpenBase},
		{lua.TabLibName, lua.OpenTable},
	} {
		if err := l.CallByParam(lua.P{Fn: l.NewFunction(lib.open), Protect: true}, lua.LString(lib.name)); err != nil {
			return verdict{Status: "Unknown", Error: err.Error()}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	l.SetContext(ctx)
	l.SetGlobal("obj", luaValue(l, u.Object))
	if err := l.DoString(script); err != nil {
		return verdict{Status: "Unknown", Error: err.Error()}
	}
	table, ok := l.Get(-1).(*lua.LTable)
	if !ok {
		return verdict{Status: "Unknown", Error: fmt.Sprintf("expect table output from Lua script, not %s", l.Get(-1).Type())}
	}
	v := verdict{Status: lua.LVAsString(table.RawGetString("status")), Message: lua.LVAsString(table.RawGetString("message"))}
	switch v.Status {
	case "Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown":
		return v
	}
	return verdict{Status: "Unknown", Message: "Lua returned an invalid health status", Error: v.Status}
}

// luaValue converts like Argo CD's decodeValue: maps to tables, slices to
// 1-based arrays, numbers to Lua numbers, null to nil.
func luaValue(l *lua.LState, value any) lua.LValue {
	switch v := value.(type) {
	case bool:
		return lua.LBool(v)
	case string:
		return lua.LString(v)
	case int64:
		return lua.LNumber(v)
	case float64:
		return lua.LNumber(v)
	case []any:
		arr := l.CreateTable(len(v), 0)
		for _, item := range v {
			arr.Append(luaValue(l, item))
		}
		return arr
	case map[string]any:
		tbl := l.CreateTable(0, len(v))
		for key, item := range v {
			tbl.RawSetH(lua.LString(key), luaValue(l, item))
		}
		return tbl
	}
	return lua.LNil
}

type fluxCheck struct {
	inProgress, failed, current cel.Program
}

// loadFlux reads spec.healthCheckExprs and builds programs with the CEL
// environment of fluxcd/pkg runtime/cel: parsed, not compiled (CRDs need not
// have the usual top-level fields), each top-level field a variable.
func loadFlux(path string) (map[schema.GroupKind]*fluxCheck, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var doc struct {
		Spec struct {
			HealthCheckExprs []struct {
				APIVersion string `json:"apiVersion"`
				Kind       string `json:"kind"`
				InProgress string `json:"inProgress"`
				Failed     string `json:"failed"`
				Current    string `json:"current"`
			} `json:"healthCheckExprs"`
		} `json:"spec"`
	}
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	env, err := cel.NewEnv(
		cel.HomogeneousAggregateLiterals(),
		cel.EagerlyValidateDeclarations(true),
		cel.DefaultUTCTimeZone(true),
		cel.CrossTypeNumericComparisons(true),
		cel.OptionalTypes(),
		ext.Strings(),
		ext.Sets(),
		ext.Encoders(),
	)
	if err != nil {
		return nil, err
	}
	program := func(expr string) (cel.Program, error) {
		if expr == "" {
			return nil, nil
		}
		ast, issues := env.Parse(expr)
		if issues != nil && issues.Err() != nil {
			return nil, fmt.Errorf("%s: %q: %w", path, expr, issues.Err())
		}
		return env.Program(ast, cel.EvalOptions(cel.OptOptimize), cel.InterruptCheckFrequency(100))
	}
	checks := map[schema.GroupKind]*fluxCheck{}
	for _, hc := range doc.Spec.HealthCheckExprs {
		if hc.Current == "" {
			return nil, fmt.Errorf("%s: %s has no current expression", path, hc.Kind)
		}
		var c fluxCheck
		for _, p := range []struct {
			dst  *cel.Program
			expr string
		}{{&c.inProgress, hc.InProgress}, {&c.failed, hc.Failed}, {&c.current, hc.Current}} {
			if *p.dst, err = program(p.expr); err != nil {
				return nil, err
			}
		}
		checks[schema.FromAPIVersionAndKind(hc.APIVersion, hc.Kind).GroupKind()] = &c
	}
	return checks, nil
}

// fluxHealth follows fluxcd/pkg runtime/cel StatusEvaluator.Evaluate: an
// observedGeneration behind metadata.generation is InProgress before any
// expression runs; then inProgress, failed, current, first true wins; none
// true is InProgress. An evaluation error is Unknown (Flux's generic status
// reader), which a health check with wait never accepts. Kinds without an
// entry get kstatus, as in Flux.
func fluxHealth(u *unstructured.Unstructured, checks map[schema.GroupKind]*fluxCheck) verdict {
	check, ok := checks[u.GroupVersionKind().GroupKind()]
	if !ok {
		return computeKStatus(u)
	}
	unknown := func(err error) verdict { return verdict{Status: status.UnknownStatus.String(), Error: err.Error()} }
	observed, found, err := unstructured.NestedInt64(u.Object, "status", "observedGeneration")
	if err != nil {
		return unknown(err)
	}
	if found && observed != u.GetGeneration() {
		return verdict{Status: status.InProgressStatus.String(), Message: "observedGeneration differs from generation"}
	}
	for _, step := range []struct {
		prog   cel.Program
		result status.Status
	}{{check.inProgress, status.InProgressStatus}, {check.failed, status.FailedStatus}, {check.current, status.CurrentStatus}} {
		if step.prog == nil {
			continue
		}
		val, _, err := step.prog.ContextEval(context.Background(), u.Object)
		if err != nil {
			return unknown(err)
		}
		b, ok := val.(types.Bool)
		if !ok {
			return unknown(fmt.Errorf("expression is not boolean: %v", val))
		}
		if b {
			return verdict{Status: step.result.String()}
		}
	}
	return verdict{Status: status.InProgressStatus.String()}
}
