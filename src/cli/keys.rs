//! `nanotune keys`: the screen's default keys, as a `keys.toml` to start from.

use crate::tui::keys::Keymap;
use anyhow::Result;
use clap::Args;

/// Print the screen's default keys as a keys.toml.
///
/// Put the lines to change in keys.toml beside settings.toml (~/.config/nanotune/ on Linux, or
/// beside the file given to --config): a command listed there replaces its default keys.
#[derive(Args, Debug)]
pub struct KeysArgs {
    /// Print the keys as the README's Markdown table instead.
    #[arg(long)]
    pub markdown: bool,
}

pub fn run(args: KeysArgs) -> Result<()> {
    let keys = Keymap::defaults();
    print!(
        "{}",
        if args.markdown {
            keys.markdown()
        } else {
            keys.to_toml()
        }
    );
    Ok(())
}
