//! `--generate-completions SHELL` and `--generate-manpage`: the daemons' shell completions
//! and man pages, generated from their clap definitions, printed on stdout before any
//! configuration is read.

use std::io::Write;
use std::process::ExitCode;

use clap::CommandFactory;
pub use clap_complete::Shell;

/// The two flags, flattened into each daemon's `Args`. Each excludes every other flag.
#[derive(Debug, Default, Clone, clap::Args)]
pub struct DocFlags {
    /// Print the shell completion script for SHELL on stdout and exit.
    #[arg(long, value_name = "SHELL", exclusive = true)]
    pub generate_completions: Option<Shell>,
    /// Print the man page (roff) on stdout and exit.
    #[arg(long, exclusive = true)]
    pub generate_manpage: bool,
}

impl DocFlags {
    /// Writes the document asked for, if any, for the program `A` describes and returns the
    /// exit status; `None` when neither flag was given.
    pub fn run<A: CommandFactory>(&self) -> Option<ExitCode> {
        let doc = if let Some(shell) = self.generate_completions {
            completions::<A>(shell)
        } else if self.generate_manpage {
            manpage::<A>()
        } else {
            return None;
        };
        let mut out = std::io::stdout().lock();
        let written = doc.and_then(|bytes| out.write_all(&bytes).and_then(|()| out.flush()));
        Some(match written {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                let name = A::command().get_name().to_owned();
                eprintln!("{name}: cannot write the document: {e}");
                ExitCode::FAILURE
            }
        })
    }
}

/// The completion script of `A` for `shell`.
pub fn completions<A: CommandFactory>(shell: Shell) -> std::io::Result<Vec<u8>> {
    let mut cmd = A::command();
    let name = cmd.get_name().to_owned();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut cmd, name, &mut script);
    Ok(script)
}

/// The man page of `A`, section 1, as roff.
pub fn manpage<A: CommandFactory>() -> std::io::Result<Vec<u8>> {
    let mut page = Vec::new();
    clap_mangen::Man::new(A::command()).render(&mut page)?;
    Ok(page)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    /// A stand-in daemon.
    #[derive(Debug, Parser)]
    #[command(name = "demod", version, about = "A demo daemon")]
    struct Demo {
        /// Where it listens.
        #[arg(long)]
        listen: Option<String>,
        #[command(flatten)]
        docs: DocFlags,
    }

    #[test]
    fn manpage_names_the_program_and_its_flags() {
        let page = String::from_utf8(manpage::<Demo>().expect("render")).expect("utf-8");
        assert!(page.contains(".TH demod 1"), "{page}");
        assert!(
            page.contains("listen") && page.contains("generate\\-manpage"),
            "{page}"
        );
    }

    #[test]
    fn bash_completion_offers_the_flags() {
        let script = completions::<Demo>(Shell::Bash).expect("generate");
        let script = String::from_utf8(script).expect("utf-8");
        assert!(
            script.contains("_demod()") && script.contains("--listen"),
            "{script}"
        );
    }

    #[test]
    fn the_flags_stand_alone() {
        let args = Demo::try_parse_from(["demod", "--generate-completions", "zsh"]).expect("ok");
        assert_eq!(args.docs.generate_completions, Some(Shell::Zsh));
        assert!(Demo::try_parse_from(["demod", "--generate-manpage", "--listen", "x"]).is_err());
        assert!(
            Demo::try_parse_from(["demod"])
                .expect("ok")
                .docs
                .run::<Demo>()
                .is_none()
        );
    }
}
