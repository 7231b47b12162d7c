// Package agent runs an LLM loop whose tools are alknet operations. It is not built yet: the package reserves the module.
package agent
