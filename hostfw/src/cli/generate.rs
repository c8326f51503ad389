//! The hidden `hostfw generate` subcommand: writes the man page and the
//! shell completions, generated from the command-line definition, for
//! packaging (`scripts/package.sh`).

use std::{
    fs,
    io::{self, Write},
    path::{Path, PathBuf},
};

use clap_complete::Shell;

/// `hostfw generate`.
#[derive(Debug, clap::Args)]
pub struct GenerateArgs {
    /// Write the man pages (`hostfw.8`, `hostfw-SUBCOMMAND.8`) into this
    /// directory.
    #[arg(long, value_name = "DIR")]
    pub man: Option<PathBuf>,
    /// Write the bash, zsh and fish completions (`hostfw.bash`, `_hostfw`,
    /// `hostfw.fish`) into this directory.
    #[arg(long, value_name = "DIR")]
    pub completions: Option<PathBuf>,
}

/// Why `generate` failed.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    /// Neither `--man` nor `--completions` was given.
    #[error("nothing to generate: give --man DIR and/or --completions DIR")]
    Nothing,
    /// A file or directory could not be written.
    #[error("{path}: {source}")]
    Write {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
}

/// The man page's section: `hostfw` is a system administration command.
pub const MAN_SECTION: &str = "8";

/// The completion files written for each shell, by file name.
pub const COMPLETIONS: [(Shell, &str); 3] = [
    (Shell::Bash, "hostfw.bash"),
    (Shell::Zsh, "_hostfw"),
    (Shell::Fish, "hostfw.fish"),
];

/// Runs `generate` for the command `cmd` (the whole `hostfw` command line),
/// printing the paths it wrote to `out`.
pub fn run(
    cmd: clap::Command,
    args: &GenerateArgs,
    out: &mut dyn Write,
) -> Result<(), GenerateError> {
    if args.man.is_none() && args.completions.is_none() {
        return Err(GenerateError::Nothing);
    }
    if let Some(dir) = &args.man {
        for path in man_pages(cmd.clone(), dir)? {
            report(out, &path)?;
        }
    }
    if let Some(dir) = &args.completions {
        for path in completions(cmd, dir)? {
            report(out, &path)?;
        }
    }
    Ok(())
}

/// Writes `DIR/hostfw.8` and a page for each visible subcommand
/// (`hostfw-status.8`, …, which `hostfw.8` refers to) and returns their
/// paths.
pub fn man_pages(cmd: clap::Command, dir: &Path) -> Result<Vec<PathBuf>, GenerateError> {
    fn each(
        cmd: clap::Command,
        dir: &Path,
        written: &mut Vec<PathBuf>,
    ) -> Result<(), GenerateError> {
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()).cloned() {
            each(sub, dir, written)?;
        }
        let man = clap_mangen::Man::new(cmd)
            .section(MAN_SECTION)
            .manual("System Administration");
        let path = dir.join(man.get_filename());
        let mut buf = Vec::new();
        man.render(&mut buf)
            .map_err(|source| GenerateError::Write {
                path: path.clone(),
                source,
            })?;
        write(&path, &buf)?;
        written.push(path);
        Ok(())
    }
    create_dir(dir)?;
    let mut cmd = cmd.disable_help_subcommand(true);
    cmd.build();
    let mut written = Vec::new();
    each(cmd, dir, &mut written)?;
    Ok(written)
}

/// Writes the completion files of [`COMPLETIONS`] into `dir` and returns
/// their paths.
pub fn completions(mut cmd: clap::Command, dir: &Path) -> Result<Vec<PathBuf>, GenerateError> {
    create_dir(dir)?;
    let name = cmd.get_name().to_owned();
    let mut written = Vec::new();
    for (shell, file) in COMPLETIONS {
        let mut buf = Vec::new();
        clap_complete::generate(shell, &mut cmd, name.clone(), &mut buf);
        let path = dir.join(file);
        write(&path, &buf)?;
        written.push(path);
    }
    Ok(written)
}

fn create_dir(dir: &Path) -> Result<(), GenerateError> {
    fs::create_dir_all(dir).map_err(|source| GenerateError::Write {
        path: dir.to_path_buf(),
        source,
    })
}

fn write(path: &Path, contents: &[u8]) -> Result<(), GenerateError> {
    fs::write(path, contents).map_err(|source| GenerateError::Write {
        path: path.to_path_buf(),
        source,
    })
}

fn report(out: &mut dyn Write, path: &Path) -> Result<(), GenerateError> {
    writeln!(out, "{}", path.display()).map_err(|source| GenerateError::Write {
        path: PathBuf::from("<stdout>"),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd() -> clap::Command {
        clap::Command::new("hostfw")
            .about("test")
            .subcommand(clap::Command::new("status").about("the status"))
    }

    #[test]
    fn writes_man_page_and_completions() {
        let dir = std::env::temp_dir().join(format!("hostfw-generate-{}", std::process::id()));
        let args = GenerateArgs {
            man: Some(dir.join("man")),
            completions: Some(dir.join("completions")),
        };
        let mut out = Vec::new();
        run(cmd(), &args, &mut out).expect("generate");
        let man = fs::read_to_string(dir.join("man/hostfw.8")).expect("man page");
        assert!(man.contains(".TH hostfw 8"), "{man}");
        assert!(man.contains("status"), "{man}");
        for (_, file) in COMPLETIONS {
            let text = fs::read_to_string(dir.join("completions").join(file)).expect(file);
            assert!(text.contains("status"), "{file}: {text}");
        }
        assert!(dir.join("man/hostfw-status.8").exists());
        assert_eq!(String::from_utf8_lossy(&out).lines().count(), 5);
        fs::remove_dir_all(&dir).expect("cleanup");
    }

    #[test]
    fn refuses_to_do_nothing() {
        let args = GenerateArgs {
            man: None,
            completions: None,
        };
        assert!(matches!(
            run(cmd(), &args, &mut Vec::new()),
            Err(GenerateError::Nothing)
        ));
    }
}
