//! A [`Report`] as one self-contained HTML page: styles and its one small script
//! inline, no network. The pass table links to one section per pass, each the IR after the
//! pass with the lines it added and removed marked and each lowered node linked to
//! its source line; a chart draws FLOPs and weight bytes per step pass by pass; the
//! source closes the page, each line linked to the first node made from it.

use crate::explore::Report;
use std::fmt::Write;

/// Text made safe inside HTML.
fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            c => o.push(c),
        }
    }
    o
}

/// Selecting a node of a drawing (a click, or `#select=PASS:N` in the address)
/// shows its type and source line in a box and marks that line in the source.
const SCRIPT: &str = r#"
function rnncSelect(pass, n, scroll) {
  document.querySelectorAll('.selected').forEach(e => e.classList.remove('selected'));
  const g = document.querySelector('#pass-' + pass + ' g.node[data-value="' + n + '"]');
  if (!g) return;
  g.classList.add('selected');
  const info = document.getElementById('info');
  info.textContent = g.querySelector('title').textContent;
  info.style.display = 'block';
  const line = g.getAttribute('data-line');
  if (line) {
    const l = document.getElementById('line-' + line);
    l.classList.add('selected');
    l.closest('details').open = true;
    if (scroll) l.scrollIntoView({block: 'center'});
  }
}
document.addEventListener('click', e => {
  const g = e.target.closest('g.node');
  if (!g) return;
  e.preventDefault();
  rnncSelect(g.closest('section.pass').id.slice(5), g.getAttribute('data-value'), true);
});
const wanted = location.hash.match(/^#select=(\d+):(\d+)$/);
if (wanted) rnncSelect(wanted[1], wanted[2], false);
"#;

const STYLE: &str = "
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.1em; margin: 0; display: inline; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { padding: 0.2em 0.7em; text-align: right; border-bottom: 1px solid #ddd; }
th:nth-child(2), td:nth-child(2) { text-align: left; }
tr.unchanged td { color: #999; }
pre { background: #f7f7f7; padding: 0.6em; overflow-x: auto; font-size: 0.85em; line-height: 1.35; }
pre span { display: block; white-space: pre; }
span.add { background: #e3f7e0; } span.add::before { content: '+ '; color: #2a7a1f; }
span.del { background: #fbe4e4; text-decoration: line-through; } span.del::before { content: '- '; color: #a33; }
span.same::before { content: '  '; }
details { margin: 0.6em 0; } summary { cursor: pointer; }
.note { color: #666; font-size: 0.9em; }
a.loc { color: #888; font-size: 0.85em; margin-left: 1.5em; text-decoration: none; }
span:target { outline: 2px solid #f0b400; }
div.drawing { overflow-x: auto; border: 1px solid #eee; margin: 0.4em 0; }
svg.graph g.node:hover rect { stroke-width: 2; }
svg.graph g.node.selected > a > rect { stroke: #e08a00; stroke-width: 3; }
span.selected { background: #ffe9a8; }
#info { display: none; position: fixed; right: 1em; bottom: 1em; max-width: 40em; white-space: pre; background: #fffbe8; border: 1px solid #e0c060; padding: 0.5em 0.8em; font-family: monospace; font-size: 0.85em; }
svg text { font-size: 11px; fill: #444; }
";

/// The chart: FLOPs per step and weight bytes per step after each pass, each as
/// a line scaled to its own largest value.
fn chart(r: &Report) -> String {
    let n = r.steps.len().max(2);
    let (w, h, pad) = (640.0, 180.0, 30.0);
    let x = |i: usize| pad + (w - 2.0 * pad) * i as f64 / (n - 1) as f64;
    let line = |vals: Vec<u64>, color: &str| {
        let max = vals.iter().copied().max().unwrap_or(1).max(1) as f64;
        let pts: Vec<String> = vals
            .iter()
            .enumerate()
            .map(|(i, &v)| {
                format!(
                    "{:.1},{:.1}",
                    x(i),
                    h - pad - (h - 2.0 * pad) * v as f64 / max
                )
            })
            .collect();
        format!(
            "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"2\" points=\"{}\"/>",
            pts.join(" ")
        )
    };
    let mut s = format!("<svg width=\"{w}\" height=\"{h}\" role=\"img\" aria-label=\"FLOPs and weight bytes per step, pass by pass\">");
    s.push_str(&line(
        r.steps.iter().map(|st| st.flops_per_step).collect(),
        "#1f5fa8",
    ));
    s.push_str(&line(
        r.steps.iter().map(|st| st.weight_bytes_per_step).collect(),
        "#c2571a",
    ));
    for (i, st) in r.steps.iter().enumerate() {
        let _ = write!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            x(i),
            h - 8.0,
            i
        );
        let _ = write!(s, "<title>{}</title>", esc(&st.pass));
    }
    let first = &r.steps[0];
    let last = r.steps.last().expect("the lowered step");
    let _ = write!(
        s,
        "<text x=\"{pad}\" y=\"14\" style=\"fill:#1f5fa8\">FLOPs/step {} → {}</text><text x=\"{}\" y=\"14\" style=\"fill:#c2571a\">weight bytes/step {} → {}</text></svg>",
        first.flops_per_step,
        last.flops_per_step,
        pad + 220.0,
        first.weight_bytes_per_step,
        last.weight_bytes_per_step
    );
    s
}

/// The page.
pub fn html(r: &Report) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>rnnc explore: {}</title><style>{STYLE}</style></head><body>\n",
        esc(&r.model)
    );
    let _ = writeln!(
        s,
        "<h1>rnnc explore: model {} ({}), pipeline <code>{}</code></h1>",
        esc(&r.model),
        esc(&r.origin),
        esc(&r.pipeline)
    );
    s.push_str("<p class=\"note\">FLOPs and weight bytes are per time step and batch row; matmul/hoisted counts products outside the time loop. Click a pass for its IR and its diff against the IR before it.</p>\n");
    s.push_str("<table><tr><th>#</th><th>pass</th><th>nodes</th><th>matmul/loop</th><th>matmul/hoisted</th><th>elementwise</th><th>FLOPs/step</th><th>weight B/step</th><th>lines +/−</th><th>µs</th></tr>\n");
    for (i, st) in r.steps.iter().enumerate() {
        let class = if i > 0 && !st.changed {
            " class=\"unchanged\""
        } else {
            ""
        };
        let _ = writeln!(
            s,
            "<tr{class}><td>{i}</td><td><a href=\"#pass-{i}\">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>+{} −{}</td><td>{}</td></tr>",
            esc(&st.pass),
            st.nodes,
            st.matmuls_in_loop,
            st.matmuls_outside,
            st.elementwise,
            st.flops_per_step,
            st.weight_bytes_per_step,
            st.added(),
            st.removed(),
            st.micros
        );
    }
    s.push_str("</table>\n");
    s.push_str(&chart(r));
    s.push('\n');
    for (i, st) in r.steps.iter().enumerate() {
        let what = if i == 0 {
            "the graph as lowered".to_string()
        } else if st.changed {
            format!("changed: +{} −{} lines", st.added(), st.removed())
        } else {
            "no change".to_string()
        };
        let open = if st.changed || i == 0 { " open" } else { "" };
        let _ = writeln!(
            s,
            "<section class=\"pass\" id=\"pass-{i}\" data-pass=\"{}\"><details{open}><summary><h2>{i}. {}</h2> <span class=\"note\">{what}</span></summary><pre class=\"ir\">",
            esc(&st.pass),
            esc(&st.pass)
        );
        for (k, ((tag, line), src)) in st.diff.iter().zip(&st.source_lines).enumerate() {
            let class = match tag {
                '+' => "add",
                '-' => "del",
                _ => "same",
            };
            // A node lowered from the source links to its line there.
            let link = match src {
                Some(n) if r.source.is_some() => format!(
                    " <a class=\"loc\" href=\"#line-{n}\" title=\"source line {n}\">line {n}</a>"
                ),
                _ => String::new(),
            };
            // Block spans, no newline between them: one line each in the <pre>.
            let _ = write!(
                s,
                "<span class=\"{class}\" id=\"pass-{i}-l{k}\">{}{link}</span>",
                esc(line)
            );
        }
        s.push_str("</pre>");
        // Inline SVG needs no namespace declaration, and the page names no URL.
        let drawing = st
            .drawing
            .replace(" xmlns=\"http://www.w3.org/2000/svg\"", "");
        let _ = write!(s, "<div class=\"drawing\">{drawing}</div>");
        s.push_str("</details></section>\n");
    }
    if let Some(g) = &r.generated {
        let _ = write!(
            s,
            "<section id=\"generated\"><h2>generated code</h2> <span class=\"note\">{}</span>",
            esc(&g.summary)
        );
        for p in &g.pieces {
            let _ = write!(
                s,
                "<details><summary>{}</summary><pre class=\"code {}\">{}</pre></details>",
                esc(&p.title),
                p.language,
                esc(&p.text)
            );
        }
        s.push_str("</section>\n");
    }
    if let Some(src) = &r.source {
        s.push_str("<section id=\"source\"><details open><summary><h2>source</h2></summary><pre class=\"source\">");
        // Each line links to the first node of the lowered graph made from it.
        let lowered = &r.steps[0];
        for (n, line) in src.lines().enumerate() {
            let n = n + 1;
            let link = match lowered.source_lines.iter().position(|l| *l == Some(n)) {
                Some(k) => format!(
                    " <a class=\"loc\" href=\"#pass-0-l{k}\" title=\"its first node\">IR</a>"
                ),
                None => String::new(),
            };
            let _ = write!(
                s,
                "<span id=\"line-{n}\">{n:>4}  {}{link}</span>",
                esc(line)
            );
        }
        s.push_str("</pre></details></section>\n");
    }
    let _ = write!(s, "<div id=\"info\"></div><script>{SCRIPT}</script>");
    s.push_str("</body></html>\n");
    s
}
