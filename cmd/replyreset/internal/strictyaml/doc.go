// Package strictyaml decodes an operator's YAML file into a typed struct
// with yaml.v3, strictly: every problem (unknown key, wrong kind, bad
// value, unset ${VAR}) comes back at once with its line and key path.
package strictyaml
