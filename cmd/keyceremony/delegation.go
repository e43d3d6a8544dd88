package main

import (
	"github.com/spf13/cobra"

	"github.com/keyceremony/keyceremony/stableset/delegation"
)

func newDelegationCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "delegation",
		Short: "For developers: prove the key a project is delegated to",
		Long: `delegation is the developers' side of a project delegated to them
(docs/policy.md, "Developer delegations"). It runs on a developer's own
machine, not in the ceremony.`,
	}
	var p delegation.Proof
	var keyFile string
	prove := &cobra.Command{
		Use:   "prove --key FILE --repository NAME --project NAME --stable-version N",
		Short: "Sign the proof of possession of a developer key for one ceremony",
		Long: `prove reads the developer's private key from FILE (an unencrypted
PKCS#8 ed25519 or ECDSA P-256 key in PEM, as openssl genpkey writes) and
prints the policy's delegations[].keys[] entry for it: the key in TUF form
and its proof of possession, signed for that repository, project and
stable version (the version the ceremony signs: the published stable's
plus one, which 'stable diff' names). Paste the entry into the policy's
delegation of the project. The private key is never printed.`,
		Example: `  openssl genpkey -algorithm ed25519 -out dev.pem
  keyceremony delegation prove --key dev.pem --repository pypi --project foo-bar --stable-version 8`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := delegation.LoadPrivateKey(keyFile)
			if err != nil {
				return err
			}
			b, err := delegation.Prove(s, p)
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(b)
			return err
		},
	}
	prove.Flags().StringVar(&keyFile, "key", "", "the developer's private key: PKCS#8 PEM, ed25519 or ECDSA P-256")
	prove.Flags().StringVar(&p.Repository, "repository", "", "the repository's name, as its ceremonies record it (such as pypi)")
	prove.Flags().StringVar(&p.Project, "project", "", "the project delegated, PEP 503-normalised (such as foo-bar)")
	prove.Flags().Int64Var(&p.StableVersion, "stable-version", 0, "the stable version the ceremony signs (the published stable's plus one)")
	for _, f := range []string{"key", "repository", "project", "stable-version"} {
		prove.MarkFlagRequired(f)
	}
	cmd.AddCommand(prove)
	return cmd
}
