//! The evaluation servers that score the hidden-label test splits of DOTA v2.0 and LoveDA: the
//! archive each expects ([`archive`]), the score each sends back ([`reply`]), and what a user
//! uploads where.

pub mod archive;
pub mod reply;

use std::path::Path;

use rsfm_model::data::formats::dota::DotaVersion;
use rsfm_model::data::test_images::{dota_test_images, loveda_test_images, TestImage};
use rsfm_model::params::EvaluateParams;

/// An evaluation server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Server {
    /// The DOTA evaluation server, Task1 (oriented boxes) of DOTA v2.0 `test-dev`.
    DotaV2,
    /// The LoveDA semantic segmentation benchmark on CodaLab (`Test`).
    Loveda,
}

impl Server {
    /// Every server, in the order `--server` lists them.
    pub const ALL: [Server; 2] = [Server::DotaV2, Server::Loveda];

    /// The spelling of `--server` and of the `server=` protocol setting.
    pub fn name(self) -> &'static str {
        match self {
            Server::DotaV2 => "dota-v2",
            Server::Loveda => "loveda",
        }
    }

    /// Parses a `--server` value; the error lists the servers.
    pub fn parse(name: &str) -> Result<Server, String> {
        Server::ALL
            .into_iter()
            .find(|s| s.name() == name)
            .ok_or_else(|| {
                let names: Vec<&str> = Server::ALL.iter().map(|s| s.name()).collect();
                format!("unknown server `{name}`: use {}", names.join(" or "))
            })
    }

    /// The dataset format it scores.
    pub fn format(self) -> &'static str {
        match self {
            Server::DotaV2 => "dota",
            Server::Loveda => "loveda",
        }
    }

    /// The server that scores the predictions of `params`, an evaluation with `split = "test"`
    /// (None for DOTA releases other than v2.0, which this study does not submit).
    pub fn for_evaluation(params: &EvaluateParams) -> Option<Server> {
        match params.format.as_deref()? {
            "dota" if params.version == "v2.0" => Some(Server::DotaV2),
            "loveda" => Some(Server::Loveda),
            _ => None,
        }
    }

    /// The test images the server scores, listed from the dataset root.
    pub fn test_images(self, root: &Path) -> anyhow::Result<Vec<TestImage>> {
        Ok(match self {
            Server::DotaV2 => dota_test_images(root, DotaVersion::V2_0)?,
            Server::Loveda => loveda_test_images(root)?,
        })
    }

    /// How many test images the released split holds, and where that number comes from.
    pub fn released_test_images(self) -> (usize, &'static str) {
        match self {
            Server::DotaV2 => (2792, "DOTA v2.0 test-dev (Ding et al. 2021)"),
            Server::Loveda => (
                1796,
                "LoveDA Test, 820 urban + 976 rural (Wang et al. 2021)",
            ),
        }
    }

    /// Where the archive goes and what comes back.
    pub fn upload_hint(self) -> &'static str {
        match self {
            Server::DotaV2 => {
                "upload it on the DOTA evaluation server (https://captain-whu.github.io/DOTA/evaluation.html), Task1 of DOTA-v2.0 test-dev; save the e-mail it sends back (\"mAP: …\" and \"ap of each class: …\") to a file"
            }
            Server::Loveda => {
                "upload it to the LoveDA semantic segmentation competition on CodaLab (linked from https://github.com/Junjue-Wang/LoveDA); save the scores it shows (mIoU and the seven class IoUs) to a file"
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_names_parse_and_unknown_ones_list_the_choices() {
        for server in Server::ALL {
            assert_eq!(Server::parse(server.name()), Ok(server));
        }
        let err = Server::parse("dota").unwrap_err();
        assert!(err.contains("dota-v2 or loveda"), "{err}");
    }
}
