package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/keyceremony/keyceremony/ceremony"
)

func newRunSheetCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "runsheet",
		Short: "Write the printable run sheet of a ceremony, before the ceremony",
		Long: `runsheet writes, from the bootstrap configuration, the run sheet of a
ceremony: every numbered step (the screens of the ceremony show the same
numbers) with who acts, what is done and what is checked or read aloud,
and blanks for initials, times and every digest in PGP words. The HTML has
a print stylesheet; --pdf also prints it to PDF with headless Chromium
(chromium on PATH). Neither file may exist.`,
	}
	cmd.AddCommand(newRunSheetSubcommand(ceremony.CeremonyBootstrap, "the bootstrap ceremony: devices, pre-flight, key generation, signatures, media"),
		newRunSheetSubcommand(ceremony.CeremonyStable, "a stable signing: backup medium, inputs, review, the stable keyholders' signatures, media"))
	return cmd
}

func newRunSheetSubcommand(which, what string) *cobra.Command {
	o := ceremony.RunSheetOptions{Ceremony: which}
	cmd := &cobra.Command{
		Use:   which + " --config FILE --out FILE.html [--pdf FILE.pdf] [--paper a4|letter]",
		Short: "The run sheet of " + what,
		Example: fmt.Sprintf(`  keyceremony runsheet %s --config bootstrap.json --out %s.html
  keyceremony runsheet %s --config bootstrap.json --out %s.html --pdf %s.pdf --paper letter`, which, which, which, which, which),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.Config == "" || o.Out == "" {
				return usage("--config and --out are required", "see keyceremony runsheet "+which+" --help")
			}
			o.Now, o.Version = time.Now().UTC(), version()
			if err := ceremony.WriteRunSheet(cmd.Context(), o); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "run sheet written to %s\n", o.Out)
			if o.PDF != "" {
				fmt.Fprintf(cmd.OutOrStdout(), "PDF written to %s\n", o.PDF)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&o.Config, "config", "", "bootstrap configuration (JSON; its roles, devices and keyholders)")
	cmd.Flags().StringVar(&o.Out, "out", "", "HTML file to write (must not exist)")
	cmd.Flags().StringVar(&o.PDF, "pdf", "", "also print the run sheet to this PDF file (must not exist; needs chromium on PATH)")
	cmd.Flags().StringVar(&o.Paper, "paper", ceremony.PaperA4, "paper size: a4 or letter")
	if which == ceremony.CeremonyStable {
		cmd.Flags().StringVar(&o.Backup, "backup", "", "the backup medium: its newest state's check words and the last transcript digest are printed on the sheet, to compare against the last run sheet")
		cmd.Use = which + " --config FILE --out FILE.html [--backup DIR] [--pdf FILE.pdf] [--paper a4|letter]"
		cmd.Example += fmt.Sprintf("\n  keyceremony runsheet %s --config bootstrap.json --backup /media/backup --out %s.html", which, which)
	}
	return cmd
}
