//! A large definition for the benchmark: the alerts of a real threshold
//! file repeated under new names until there are N.

/// Inserts renamed copies of the file's alerts at the end of its `alerts:`
/// section (sections may follow it) until it has `n` alerts. Works on the
/// text so the benchmark includes parsing.
pub fn scale(text: &str, n: usize) -> String {
    let Some(start) = text.find("\nalerts:\n") else { return text.to_owned() };
    let body_start = start + "\nalerts:\n".len();
    let body_end = section_end(text, body_start);
    let alerts: Vec<&str> = split_items(&text[body_start..body_end]);
    if alerts.is_empty() {
        return text.to_owned();
    }
    let mut out = text[..body_end].to_owned();
    if !out.ends_with('\n') {
        out.push('\n');
    }
    let mut i = alerts.len();
    let mut copy = 1;
    while i < n {
        for alert in &alerts {
            if i >= n {
                break;
            }
            out.push_str(&rename(alert, copy));
            i += 1;
        }
        copy += 1;
    }
    out.push_str(&text[body_end..]);
    out
}

/// Where the top-level section whose body starts at `from` ends: the start of
/// the next line that begins a top-level key (or a comment leading to one),
/// or the end of the text.
fn section_end(text: &str, from: usize) -> usize {
    let mut offset = from;
    let mut comments_from: Option<usize> = None;
    for line in text[from..].split_inclusive('\n') {
        let first = line.chars().next();
        match first {
            Some('#') => {
                comments_from.get_or_insert(offset);
            }
            Some(c) if c.is_ascii_alphabetic() => return comments_from.unwrap_or(offset),
            _ if line.trim().is_empty() => {}
            _ => comments_from = None,
        }
        offset += line.len();
    }
    text.len()
}

fn split_items(body: &str) -> Vec<&str> {
    let mut items = Vec::new();
    let mut begin: Option<usize> = None;
    let mut offset = 0;
    for line in body.split_inclusive('\n') {
        if line.starts_with("  - ") {
            if let Some(b) = begin {
                items.push(&body[b..offset]);
            }
            begin = Some(offset);
        }
        offset += line.len();
    }
    if let Some(b) = begin {
        items.push(&body[b..]);
    }
    items
}

fn rename(alert: &str, copy: usize) -> String {
    let mut out = String::new();
    for line in alert.split_inclusive('\n') {
        if let Some(name) = line.strip_prefix("  - name: ") {
            out.push_str(&format!("  - name: {}Copy{copy}\n", name.trim_end()));
        } else if let Some(rest) = line.trim_start().strip_prefix("record: ") {
            let indent = &line[..line.len() - line.trim_start().len()];
            out.push_str(&format!("{indent}record: {}_copy{copy}\n", rest.trim_end()));
        } else if let Some(rest) = line.trim_start().strip_prefix("dashboard: {board: ") {
            // Copies get their own panels so dashboards grow like the definition.
            let indent = &line[..line.len() - line.trim_start().len()];
            let rest = rest.replacen("panel: ", &format!("panel: copy {copy} "), 1);
            out.push_str(&format!("{indent}dashboard: {{board: {rest}"));
        } else {
            out.push_str(line);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn copies_stay_in_the_alerts_section() {
        let text =
            "version: x\nalerts:\n  - name: A\n    for: 1m\n\n# lists\nchecklists:\n  overnight: 15h\n";
        let scaled = super::scale(text, 3);
        assert_eq!(
            scaled,
            "version: x\nalerts:\n  - name: A\n    for: 1m\n\n  - name: ACopy1\n    for: 1m\n\n  \
             - name: ACopy2\n    for: 1m\n\n# lists\nchecklists:\n  overnight: 15h\n"
        );
    }

    #[test]
    fn scales_by_renaming() {
        let text = "version: x\nalerts:\n  - name: A\n    record: a:b:c\n  - name: B\n";
        let big = super::scale(text, 5);
        assert_eq!(big.matches("  - name: ").count(), 5);
        assert!(big.contains("  - name: ACopy1\n    record: a:b:c_copy1\n"));
        assert!(big.contains("  - name: ACopy2\n"));
    }
}
