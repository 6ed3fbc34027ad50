package main

import (
	"github.com/spf13/cobra"
)

// newCompletionCmd prints a shell completion script. It takes the place
// of cobra's default command of the same name, which has no examples and
// is added only when the CLI runs, too late for the man pages.
func newCompletionCmd(e *env) *cobra.Command {
	var noDesc bool
	c := &cobra.Command{
		Use:   "completion bash|zsh|fish|powershell",
		Short: "Print the shell completion script for bash, zsh, fish or PowerShell",
		Long: "Print a script that completes keyturn's commands and flags in your shell.\n" +
			"Load it once in the current shell, or install it where the shell looks for\n" +
			"completions. bash needs the bash-completion package; zsh needs compinit.",
		Example: "  # bash, this shell only, then for every new shell:\n" +
			"  source <(keyturn completion bash)\n" +
			"  keyturn completion bash | sudo tee /etc/bash_completion.d/keyturn\n" +
			"  # zsh:\n" +
			"  keyturn completion zsh > \"${fpath[1]}/_keyturn\"\n" +
			"  # fish:\n" +
			"  keyturn completion fish > ~/.config/fish/completions/keyturn.fish",
		ValidArgs:             []string{"bash", "zsh", "fish", "powershell"},
		Args:                  args(cobra.MatchAll(cobra.ExactArgs(1), cobra.OnlyValidArgs)),
		DisableFlagsInUseLine: true,
		RunE: func(c *cobra.Command, a []string) error {
			root := c.Root()
			switch a[0] {
			case "bash":
				return root.GenBashCompletionV2(e.stdout, !noDesc)
			case "zsh":
				if noDesc {
					return root.GenZshCompletionNoDesc(e.stdout)
				}
				return root.GenZshCompletion(e.stdout)
			case "fish":
				return root.GenFishCompletion(e.stdout, !noDesc)
			default:
				if noDesc {
					return root.GenPowerShellCompletion(e.stdout)
				}
				return root.GenPowerShellCompletionWithDesc(e.stdout)
			}
		},
	}
	c.Flags().BoolVar(&noDesc, "no-descriptions", false,
		"leave the commands' descriptions out of the completions")
	return c
}
