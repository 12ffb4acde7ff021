package main

import (
	"context"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
)

// completionTree is the command line as a shell completes it: the
// commands, and the subcommands of those that have some. Each leaf's
// flags are read from its own --help, so the scripts cannot drift from
// the flags the commands really take.
var completionTree = []struct {
	name string
	subs []string
}{
	{"serve", nil},
	{"migrate", nil},
	{"token", []string{"create", "list", "revoke"}},
	{"webhook", []string{"list", "get", "create", "edit", "delete", "events", "test", "recover", "stats"}},
	{"delivery", []string{"list", "retry"}},
	{"source", []string{"list", "get", "create", "edit", "delete"}},
	{"audit", nil},
	{"emit", nil},
	{"bench", nil},
	{"version", nil},
	{"completion", []string{"bash", "zsh"}},
}

// completionLeaf is a command that takes flags, by its words.
type completionLeaf struct {
	key   string // "webhook recover"
	flags []string
}

// flagLine is a flag in flag.PrintDefaults' output, with the first line
// of its help; a flag whose help starts with "refused:" is not offered.
var flagLine = regexp.MustCompile(`(?m)^  -([a-z][a-z0-9-]*).*\n\s*(.*)`)

// completionLeaves runs each leaf's --help in process (nothing is sent or
// opened: flags are parsed first) and collects its flags.
func completionLeaves() []completionLeaf {
	var out []completionLeaf
	for _, c := range completionTree {
		paths := [][]string{{c.name}}
		if c.subs != nil {
			paths = nil
			for _, s := range c.subs {
				paths = append(paths, []string{c.name, s})
			}
		}
		for _, p := range paths {
			var help strings.Builder
			if p[0] != "completion" && p[0] != "version" {
				run(context.Background(), append(slices.Clone(p), "--help"), nil, io.Discard, &help)
			}
			var flags []string
			for _, m := range flagLine.FindAllStringSubmatch(help.String(), -1) {
				if !strings.HasPrefix(m[2], "refused:") && !slices.Contains(flags, "--"+m[1]) {
					flags = append(flags, "--"+m[1])
				}
			}
			out = append(out, completionLeaf{key: strings.Join(p, " "), flags: flags})
		}
	}
	return out
}

func runCompletion(args []string, stdout, stderr io.Writer) error {
	const usage = "Usage: hookd completion bash|zsh\n\n" +
		"bash: source <(hookd completion bash), or save it as /etc/bash_completion.d/hookd\n" +
		"zsh:  source <(hookd completion zsh), or save it as _hookd in a directory of $fpath\n"
	if len(args) != 1 {
		fmt.Fprint(stderr, usage)
		return usageError{"completion: name a shell: bash or zsh"}
	}
	switch args[0] {
	case "bash":
		_, err := io.WriteString(stdout, completionScript(bashTemplate))
		return err
	case "zsh":
		_, err := io.WriteString(stdout, completionScript(zshTemplate))
		return err
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return usageError{fmt.Sprintf("completion: unknown shell %q (bash or zsh)", args[0])}
}

// completionScript fills a template's GROUPS (the commands with
// subcommands, as a case pattern), CASES (what to offer after each
// command) and LEAVES (the commands that take flags, as a case pattern).
func completionScript(tmpl string) string {
	var groups, cases, leaves []string
	var top []string
	for _, c := range completionTree {
		top = append(top, c.name)
		if c.subs != nil {
			groups = append(groups, c.name)
			cases = append(cases, fmt.Sprintf("    %q) opts=%q ;;", c.name, strings.Join(c.subs, " ")))
		}
	}
	cases = append([]string{fmt.Sprintf("    \"\") opts=%q ;;", strings.Join(top, " "))}, cases...)
	for _, l := range completionLeaves() {
		leaves = append(leaves, fmt.Sprintf("%q", l.key))
		cases = append(cases, fmt.Sprintf("    %q) opts=%q ;;", l.key, strings.Join(l.flags, " ")))
	}
	return strings.NewReplacer("GROUPS", strings.Join(groups, "|"), "CASES", strings.Join(cases, "\n"),
		"LEAVES", strings.Join(leaves, "|")).Replace(tmpl)
}

// Both scripts find the command by the words typed so far that are not
// flags (a flag's value after a leaf changes nothing), then offer the
// subcommands of a group or the flags of a leaf; after a leaf, a word
// that is not a flag completes as a file name (--secret-file, --file).
const bashTemplate = `# bash completion for hookd: source <(hookd completion bash)
_hookd() {
  local cur=${COMP_WORDS[COMP_CWORD]} key="" w i opts=""
  for ((i = 1; i < COMP_CWORD; i++)); do
    w=${COMP_WORDS[i]}
    [[ $w == -* ]] && continue
    case "$key" in
      ""|GROUPS) key="${key:+$key }$w" ;;
    esac
  done
  case "$key" in
CASES
  esac
  case "$key" in
    LEAVES)
      [[ $cur == -* ]] || return 0 ;;
  esac
  COMPREPLY=($(compgen -W "$opts" -- "$cur"))
}
complete -o default -F _hookd hookd
`

const zshTemplate = `#compdef hookd
# zsh completion for hookd: source <(hookd completion zsh), or save as _hookd in $fpath
_hookd() {
  local key="" w i opts=""
  for ((i = 2; i < CURRENT; i++)); do
    w=${words[i]}
    [[ $w == -* ]] && continue
    case "$key" in
      ""|GROUPS) key="${key:+$key }$w" ;;
    esac
  done
  case "$key" in
CASES
  esac
  case "$key" in
    LEAVES)
      if [[ $PREFIX != -* ]]; then _files; return; fi ;;
  esac
  compadd -- ${=opts}
}
if [[ $funcstack[1] == _hookd ]]; then
  _hookd "$@"
elif (( $+functions[compdef] )); then
  compdef _hookd hookd
fi
`
