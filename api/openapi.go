package api

import (
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// The OpenAPI 3.1 document is assembled from the route table (paths,
// parameters, which schema each status answers with) and the JSON Schemas
// written by hand in openapi/*.json, so that a route cannot exist without
// being documented, and the contract test can check every response against
// what the document promises.

//go:embed openapi/*.json
var schemaFiles embed.FS

// commonProblems are the problem answers any /v1 route may give.
var commonProblems = []int{
	http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden, http.StatusRequestEntityTooLarge,
	http.StatusUnsupportedMediaType, http.StatusUnprocessableEntity, http.StatusInternalServerError,
	http.StatusServiceUnavailable,
}

// loadSchemas merges the components/schemas of every openapi/*.json file.
func loadSchemas() (map[string]any, error) {
	out := map[string]any{}
	paths, err := fs.Glob(schemaFiles, "openapi/*.json")
	if err != nil {
		return nil, err
	}
	slices.Sort(paths)
	for _, p := range paths {
		b, err := schemaFiles.ReadFile(p)
		if err != nil {
			return nil, err
		}
		var f struct {
			Schemas map[string]any `json:"schemas"`
		}
		dec := json.NewDecoder(strings.NewReader(string(b)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&f); err != nil {
			return nil, fmt.Errorf("api: %s: %w", p, err)
		}
		for name, sc := range f.Schemas {
			if _, dup := out[name]; dup {
				return nil, fmt.Errorf("api: %s: schema %s is defined twice", p, name)
			}
			out[name] = sc
		}
	}
	return out, nil
}

func ref(name string) map[string]any {
	return map[string]any{"$ref": "#/components/schemas/" + name}
}

// openAPI builds the document.
func (s *Server) openAPI() (map[string]any, error) {
	schemas, err := loadSchemas()
	if err != nil {
		return nil, err
	}
	paths := map[string]any{}
	for _, rt := range s.routes() {
		item, _ := paths[rt.Pattern].(map[string]any)
		if item == nil {
			item = map[string]any{}
			paths[rt.Pattern] = item
		}
		op, err := operation(rt, schemas)
		if err != nil {
			return nil, err
		}
		item[strings.ToLower(rt.Method)] = op
	}
	var problems []string
	for _, k := range problemKinds {
		problems = append(problems, ProblemTypeBase+k.slug)
	}
	return map[string]any{
		"openapi": "3.1.0",
		"info": map[string]any{
			"title":   "Payesh",
			"version": "1",
			"description": "Payesh (پایش) is an event-sourced ledger of government employment-creation facilities. " +
				"Commands (POST) append events; queries (GET) read projected read models, each answer carrying the log position it reflects. " +
				"Problem types: " + strings.Join(problems, ", ") + ".",
		},
		"jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
		"paths":             paths,
		"components": map[string]any{
			"schemas": schemas,
			"securitySchemes": map[string]any{
				"bearer": map[string]any{"type": "http", "scheme": "bearer", "bearerFormat": "payesh.v1 token or payesh.key API key"},
			},
		},
		"security": []any{map[string]any{"bearer": []any{}}},
	}, nil
}

// operation documents one route.
func operation(rt route, schemas map[string]any) (map[string]any, error) {
	d := rt.Doc
	if d.Summary == "" || len(d.Responses) == 0 {
		return nil, fmt.Errorf("api: route %s %s is not documented", rt.Method, rt.Pattern)
	}
	op := map[string]any{
		"operationId":     operationID(rt),
		"summary":         d.Summary,
		"x-payesh-action": string(rt.Action),
	}
	if d.Description != "" {
		op["description"] = d.Description
	}
	if len(d.Tags) > 0 {
		op["tags"] = d.Tags
	}
	var params []any
	for _, p := range d.Params {
		params = append(params, map[string]any{
			"name": p.Name, "in": p.In, "required": p.Required || p.In == "path",
			"description": p.Description, "schema": p.Schema,
		})
	}
	if d.Idempotent {
		params = append(params, map[string]any{"name": "Idempotency-Key", "in": "header", "required": false,
			"description": "Makes a retry safe: the same key and body return the first answer and append nothing; the same key with another body is refused (422).",
			"schema":      map[string]any{"type": "string", "minLength": 1, "maxLength": 200}})
	}
	if d.IfMatch {
		params = append(params, map[string]any{"name": "If-Match", "in": "header", "required": false,
			"description": "The stream version (the ETag of an earlier answer) the command expects; 412 if the record has changed since.",
			"schema":      map[string]any{"type": "string"}})
	}
	if len(params) > 0 {
		op["parameters"] = params
	}
	check := func(name string) error {
		if _, ok := schemas[name]; !ok {
			return fmt.Errorf("api: route %s %s names schema %s, which no openapi/*.json defines", rt.Method, rt.Pattern, name)
		}
		return nil
	}
	if d.Request != "" {
		if err := check(d.Request); err != nil {
			return nil, err
		}
		op["requestBody"] = map[string]any{"required": true, "content": map[string]any{
			"application/json": map[string]any{"schema": ref(d.Request)}}}
	}
	responses := map[string]any{}
	statuses := slices.Sorted(maps.Keys(d.Responses))
	for _, code := range commonProblems {
		if _, ok := d.Responses[code]; !ok {
			statuses = append(statuses, code)
		}
	}
	for _, code := range statuses {
		name, ok := d.Responses[code]
		if !ok {
			name = "Problem"
		}
		resp := map[string]any{"description": http.StatusText(code)}
		if name != "" {
			if err := check(name); err != nil {
				return nil, err
			}
			ct := "application/json"
			if name == "Problem" {
				ct = "application/problem+json"
			}
			content := map[string]any{ct: map[string]any{"schema": ref(name)}}
			if d.CSV && code < 300 {
				content["text/csv"] = map[string]any{"schema": map[string]any{"type": "string"}}
			}
			resp["content"] = content
		}
		responses[strconv.Itoa(code)] = resp
	}
	op["responses"] = responses
	return op, nil
}

// operationID derives a stable id from the method and the pattern.
func operationID(rt route) string {
	var b strings.Builder
	b.WriteString(strings.ToLower(rt.Method))
	for _, part := range strings.Split(strings.TrimPrefix(rt.Pattern, "/v1/"), "/") {
		part = strings.Trim(part, "{}")
		for _, w := range strings.FieldsFunc(part, func(r rune) bool { return r == '-' || r == '_' || r == '.' }) {
			b.WriteString(strings.ToUpper(w[:1]) + w[1:])
		}
	}
	return b.String()
}

// serveOpenAPI answers GET /openapi.json. The document is built once.
func (s *Server) serveOpenAPI() http.HandlerFunc {
	var (
		once sync.Once
		body []byte
		err  error
	)
	return func(w http.ResponseWriter, r *http.Request) {
		once.Do(func() {
			var doc map[string]any
			if doc, err = s.openAPI(); err == nil {
				body, err = json.MarshalIndent(doc, "", "  ")
			}
		})
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}
}
