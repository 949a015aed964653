//! The documentation's relative links: every link from a Markdown file of the repository's root,
//! `docs/`, `bench/` or `clients/js/` to a file must name a file that exists, and every
//! `#anchor` a heading of the page it points to (with GitHub's heading ids), so moving a section
//! cannot leave a reader at a dead link.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The Markdown files checked, relative to the repository's root.
fn documents() -> Vec<PathBuf> {
    let mut found = Vec::new();
    for dir in ["", "docs", "bench", "clients/js"] {
        let Ok(entries) = std::fs::read_dir(Path::new(ROOT).join(dir)) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|ext| ext == "md") {
                found.push(path.strip_prefix(ROOT).unwrap().to_path_buf());
            }
        }
    }
    found.sort();
    found
}

/// The text outside fenced code blocks and inline code, where links are links.
fn prose(markdown: &str) -> String {
    let mut out = String::new();
    let mut fenced = false;
    for line in markdown.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        let mut in_code = false;
        for c in line.chars() {
            if c == '`' {
                in_code = !in_code;
            } else if !in_code {
                out.push(c);
            }
        }
        out.push('\n');
    }
    out
}

/// The targets of `[text](target)` links and `[label]: target` definitions.
fn link_targets(markdown: &str) -> Vec<String> {
    let text = prose(markdown);
    let mut targets = Vec::new();
    let mut rest = text.as_str();
    while let Some(at) = rest.find("](") {
        let after = &rest[at + 2..];
        let end = after.find(')').unwrap_or(after.len());
        let target = after[..end].split_whitespace().next().unwrap_or_default();
        targets.push(target.trim_matches(['<', '>']).to_owned());
        rest = &after[end..];
    }
    for line in text.lines() {
        let line = line.trim_start();
        if line.starts_with('[')
            && let Some((_, target)) = line.split_once("]: ")
        {
            targets.push(
                target
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_owned(),
            );
        }
    }
    targets
}

/// GitHub's id for a heading: lowercase, punctuation dropped but `-` and `_`, spaces to `-`,
/// and `-1`, `-2`, … on repeats.
fn heading_ids(markdown: &str) -> Vec<String> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut ids = Vec::new();
    let mut fenced = false;
    for line in markdown.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        }
        if fenced || !line.starts_with('#') {
            continue;
        }
        let title = line.trim_start_matches('#');
        if !title.starts_with(' ') {
            continue;
        }
        let slug: String = title
            .trim()
            .to_lowercase()
            .chars()
            .filter(|c| c.is_alphanumeric() || matches!(c, ' ' | '-' | '_'))
            .map(|c| if c == ' ' { '-' } else { c })
            .collect();
        let count = seen.entry(slug.clone()).or_insert(0);
        ids.push(if *count == 0 {
            slug.clone()
        } else {
            format!("{slug}-{count}")
        });
        *count += 1;
    }
    ids
}

/// Every broken relative link of `document` (a path relative to `root`), described.
fn broken_links(root: &Path, document: &Path) -> Vec<String> {
    let markdown = std::fs::read_to_string(root.join(document)).unwrap();
    let mut broken = Vec::new();
    for target in link_targets(&markdown) {
        if target.is_empty() || target.contains("://") || target.starts_with("mailto:") {
            continue;
        }
        let (path, anchor) = match target.split_once('#') {
            Some((path, anchor)) => (path, Some(anchor)),
            None => (target.as_str(), None),
        };
        let linked = if path.is_empty() {
            root.join(document)
        } else {
            root.join(document.parent().unwrap()).join(path)
        };
        if !linked.exists() {
            broken.push(format!("{}: {target}: no such file", document.display()));
            continue;
        }
        if let Some(anchor) = anchor
            && linked.extension().is_some_and(|ext| ext == "md")
        {
            let ids = heading_ids(&std::fs::read_to_string(&linked).unwrap());
            if !ids.iter().any(|id| id == anchor) {
                broken.push(format!(
                    "{}: {target}: no heading with that id in {}",
                    document.display(),
                    linked.strip_prefix(root).unwrap_or(&linked).display()
                ));
            }
        }
    }
    broken
}

#[test]
fn every_relative_link_and_anchor_in_the_docs_resolves() {
    let documents = documents();
    assert!(
        documents.iter().any(|path| path == Path::new("README.md")),
        "{documents:?}"
    );
    let broken: Vec<String> = documents
        .iter()
        .flat_map(|document| broken_links(Path::new(ROOT), document))
        .collect();
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}

#[test]
fn the_checker_finds_broken_files_and_anchors_and_ignores_code() {
    let root = std::env::temp_dir().join(format!("twc-docs-{}", std::process::id()));
    std::fs::create_dir_all(root.join("docs")).unwrap();
    std::fs::write(
        root.join("docs/page.md"),
        "# A page\n\n## Set-up: the `demo` command\n\n## Set-up: the `demo` command\n",
    )
    .unwrap();
    std::fs::write(
        root.join("README.md"),
        "[ok](docs/page.md) [ok](docs/page.md#set-up-the-demo-command) [ok](docs/page.md#set-up-the-demo-command-1)\n\
         [ok](#intro) [web](https://example.com/x#y) [dir](docs/)\n\
         [gone](docs/missing.md) [bad anchor](docs/page.md#nowhere) [self](#nope)\n\
         `[not a link](nowhere.md)`\n```\n[also not](nowhere.md)\n```\n\
         [defined]: docs/gone-too.md\n\n# Intro\n",
    )
    .unwrap();
    let broken = broken_links(&root, Path::new("README.md"));
    assert_eq!(
        broken,
        [
            "README.md: docs/missing.md: no such file",
            "README.md: docs/page.md#nowhere: no heading with that id in docs/page.md",
            "README.md: #nope: no heading with that id in README.md",
            "README.md: docs/gone-too.md: no such file",
        ]
    );
    std::fs::remove_dir_all(root).unwrap();
}
