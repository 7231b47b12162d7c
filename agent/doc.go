// Package agent runs an LLM loop whose tools are alknet operations. (Built by the agent issue.)
package agent
