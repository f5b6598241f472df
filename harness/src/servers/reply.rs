//! The scores an evaluation server sends back, read from the text a user saved (an e-mail, a
//! results page), as the study's metric names and fractions:
//!
//! - DOTA: `mAP: 0.5869…` and `ap of each class: plane:0.88…, baseball-diamond:0.77…, …`
//!   (fractions), as the DOTA server's e-mail reads; → `map`, `ap.<class>`.
//! - LoveDA: one `name: value` (or `name value`) a line for `mIoU` and the class IoUs
//!   (`Background`, `Building`, `Road`, `Water`, `Barren`, `Forest`, `Agricultural`), in
//!   percent or as fractions; → `miou`, `iou.<class>`.
//!
//! A reply whose per-class scores do not average to its mean is refused: it is not one reply.

use rsfm_model::data::formats::dota::DotaVersion;
use rsfm_model::data::formats::loveda::LOVEDA_CLASSES;

use super::Server;

/// Reads the scores in `text`; an error says what is missing or wrong (the caller names the
/// file).
pub fn parse(server: Server, text: &str) -> anyhow::Result<Vec<(String, f64)>> {
    match server {
        Server::DotaV2 => parse_dota(text),
        Server::Loveda => parse_loveda(text),
    }
}

fn number(token: &str) -> Option<f64> {
    let token = token.trim().trim_end_matches([',', ';', '%']);
    token.parse::<f64>().ok().filter(|v| v.is_finite())
}

fn parse_dota(text: &str) -> anyhow::Result<Vec<(String, f64)>> {
    let lower = text.to_lowercase();
    let map_at = lower.find("map:").ok_or_else(|| {
        anyhow::anyhow!("no `mAP: <value>` line, as the DOTA server's e-mail has")
    })?;
    let map = lower[map_at + 4..]
        .split_whitespace()
        .next()
        .and_then(number)
        .ok_or_else(|| anyhow::anyhow!("`mAP:` is not followed by a number"))?;
    let mut scores = vec![("map".to_string(), map)];
    if let Some(at) = lower.find("ap of each class:") {
        let classes = DotaVersion::V2_0.classes();
        let list = &lower[at + "ap of each class:".len()..];
        for pair in list.split(',') {
            let Some((name, value)) = pair.trim().split_once(':') else {
                break;
            };
            let name = name.trim();
            if !classes.contains(&name) {
                anyhow::bail!("`{name}` in `ap of each class` is not a DOTA v2.0 class");
            }
            let mut tokens = value.split_whitespace();
            let value = tokens
                .next()
                .and_then(number)
                .ok_or_else(|| anyhow::anyhow!("the AP of `{name}` is not a number"))?;
            scores.push((format!("ap.{name}"), value));
            if tokens.next().is_some() {
                // The list ends where other text follows its last value.
                break;
            }
        }
    }
    check_fractions(&scores)?;
    check_mean(&scores, DotaVersion::V2_0.classes().len(), 1e-3)?;
    Ok(scores)
}

/// The study's name of a LoveDA class or mean as the server's page spells it.
fn loveda_metric(name: &str) -> Option<String> {
    let name = name.trim().to_lowercase();
    match name.as_str() {
        "miou" | "mean iou" | "mean_iou" => Some("miou".to_string()),
        "agricultural" => Some("iou.agriculture".to_string()),
        _ => LOVEDA_CLASSES
            .iter()
            .find(|c| **c == name)
            .map(|c| format!("iou.{c}")),
    }
}

fn parse_loveda(text: &str) -> anyhow::Result<Vec<(String, f64)>> {
    let mut scores: Vec<(String, f64)> = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        let (name, value) = match line.split_once([':', '=', '\t']) {
            Some(split) => split,
            None => match line.rsplit_once(' ') {
                Some(split) => split,
                None => continue,
            },
        };
        let (Some(metric), Some(value)) = (loveda_metric(name), number(value)) else {
            continue;
        };
        if scores.iter().any(|(m, _)| *m == metric) {
            anyhow::bail!("`{}` appears twice: save one reply per file", name.trim());
        }
        scores.push((metric, value));
    }
    let Some(index) = scores.iter().position(|(m, _)| m == "miou") else {
        anyhow::bail!("no `mIoU: <value>` line, as the LoveDA server's scores have");
    };
    scores.swap(0, index);
    if scores.iter().any(|(_, v)| *v > 1.0) {
        for (_, v) in &mut scores {
            *v /= 100.0;
        }
    }
    check_fractions(&scores)?;
    // Scores printed with two decimals in percent: the mean of the rounded classes is within
    // 0.01 points of the rounded mean.
    check_mean(&scores, LOVEDA_CLASSES.len(), 2e-4)?;
    Ok(scores)
}

fn check_fractions(scores: &[(String, f64)]) -> anyhow::Result<()> {
    match scores.iter().find(|(_, v)| !(0.0..=1.0).contains(v)) {
        Some((name, value)) => anyhow::bail!("`{name}` = {value} is not a score"),
        None => Ok(()),
    }
}

/// With every one of `classes` scored, their mean must be the reply's mean (`scores[0]`).
fn check_mean(scores: &[(String, f64)], classes: usize, tolerance: f64) -> anyhow::Result<()> {
    let per_class = &scores[1..];
    if per_class.len() != classes {
        return Ok(());
    }
    let mean = per_class.iter().map(|(_, v)| v).sum::<f64>() / classes as f64;
    anyhow::ensure!(
        (mean - scores[0].1).abs() <= tolerance,
        "the {classes} class scores average {mean:.4}, and the reply's mean is {:.4}: save one whole reply per file",
        scores[0].1
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dota_email_gives_map_and_per_class_ap() {
        let classes = DotaVersion::V2_0.classes();
        let per_class: Vec<String> = classes
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c}:{}", 0.4 + 0.01 * i as f64))
            .collect();
        let mean = (0..18).map(|i| 0.4 + 0.01 * i as f64).sum::<f64>() / 18.0;
        let text = format!(
            "This is your evaluation result for task 1:\n\nmAP: {mean}\nap of each class: {}\n\nThe submitted information is :\n",
            per_class.join(", ")
        );
        let scores = parse(Server::DotaV2, &text).unwrap();
        assert_eq!(scores.len(), 19);
        assert_eq!(scores[0], ("map".to_string(), mean));
        assert_eq!(scores[1], ("ap.plane".to_string(), 0.4));
        let wrong = text.replace(&format!("mAP: {mean}"), "mAP: 0.9");
        assert!(parse(Server::DotaV2, &wrong)
            .unwrap_err()
            .to_string()
            .contains("average"));
        assert!(parse(Server::DotaV2, "hello").is_err());
    }

    #[test]
    fn a_loveda_page_in_percent_gives_fractions() {
        let text = "mIoU: 50.00\nBackground: 44.00\nBuilding: 56.00\nRoad: 50.00\nWater: 70.00\nBarren: 30.00\nForest: 40.00\nAgricultural: 60.00\n";
        let scores = parse(Server::Loveda, text).unwrap();
        assert_eq!(scores[0], ("miou".to_string(), 0.5));
        assert!(scores.contains(&("iou.agriculture".to_string(), 0.6)));
        assert!(parse(Server::Loveda, "Background: 40").is_err());
        let twice = format!("{text}mIoU: 51.00\n");
        assert!(parse(Server::Loveda, &twice)
            .unwrap_err()
            .to_string()
            .contains("twice"));
    }
}
