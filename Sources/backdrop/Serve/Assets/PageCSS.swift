// The page's style: one column on a phone, previews side by side on a laptop.
enum ServeAssets {}

extension ServeAssets {
  static let style = #"""
:root { --accent: #2b6cb0; --bg: #f4f6f8; --card: #fff; --text: #1a202c; --muted: #667085; --bad: #c53030; }
* { box-sizing: border-box; }
[hidden] { display: none !important; }
body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; background: var(--bg); color: var(--text); }
header { padding: 18px 20px 4px; max-width: 1100px; margin: 0 auto; }
header h1 { margin: 0; font-size: 24px; }
header p { margin: 2px 0 0; color: var(--muted); }
main { max-width: 1100px; margin: 0 auto; padding: 12px 20px 40px; display: grid; gap: 16px; }
.card { background: var(--card); border-radius: 10px; padding: 16px 18px; box-shadow: 0 1px 3px rgba(0,0,0,.08); }
.card h2 { margin: 0 0 12px; font-size: 17px; }
.drop { display: block; border: 2px dashed #b8c2cc; border-radius: 10px; padding: 26px 12px; text-align: center; cursor: pointer; color: var(--muted); }
.drop.over { border-color: var(--accent); background: #ebf4ff; }
.drop input { position: absolute; width: 1px; height: 1px; opacity: 0; }
.options { display: flex; flex-wrap: wrap; gap: 10px 18px; margin: 14px 0; align-items: center; }
.options label, fieldset { display: flex; gap: 6px; align-items: center; }
fieldset { border: 0; padding: 0; margin: 0; }
legend { float: left; margin-right: 6px; }
select, input[type=color] { font: inherit; padding: 4px 6px; border: 1px solid #cbd5e0; border-radius: 6px; background: #fff; }
button, .button { font: inherit; border: 0; border-radius: 8px; padding: 9px 16px; background: var(--accent); color: #fff; cursor: pointer; text-decoration: none; display: inline-block; }
button:disabled { opacity: .5; cursor: default; }
button.secondary { background: #e2e8f0; color: var(--text); }
button.small { padding: 4px 10px; font-size: 13px; }
.error { color: var(--bad); font-weight: 600; }
.muted { color: var(--muted); }
.bar { height: 10px; background: #e2e8f0; border-radius: 5px; overflow: hidden; }
#bar-fill { height: 100%; width: 0; background: var(--accent); transition: width .25s; }
.stats { display: flex; flex-wrap: wrap; gap: 4px 16px; color: var(--muted); margin: 8px 0 12px; }
.stats #percent { color: var(--text); font-weight: 600; }
.previews { display: grid; grid-template-columns: repeat(auto-fit, minmax(240px, 1fr)); gap: 12px; margin-top: 14px; }
figure { margin: 0; }
figcaption { color: var(--muted); font-size: 13px; margin-top: 4px; }
.stage { border-radius: 8px; overflow: hidden; background: #222; background-size: cover; background-position: center; }
.stage video { display: block; width: 100%; height: auto; }
.checker { background-color: #fff; background-image: linear-gradient(45deg, #ccc 25%, transparent 25%), linear-gradient(-45deg, #ccc 25%, transparent 25%), linear-gradient(45deg, transparent 75%, #ccc 75%), linear-gradient(-45deg, transparent 75%, #ccc 75%); background-size: 20px 20px; background-position: 0 0, 0 10px, 10px -10px, -10px 0; }
.downloads { margin: 12px 0 0; display: flex; gap: 10px; flex-wrap: wrap; }
table { width: 100%; border-collapse: collapse; font-size: 14px; }
th, td { text-align: left; padding: 6px 6px; border-bottom: 1px solid #edf2f7; vertical-align: middle; }
th { color: var(--muted); font-weight: 500; }
td.name { max-width: 220px; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.state-done { color: #2f855a; } .state-failed, .state-interrupted { color: var(--bad); } .state-running { color: var(--accent); }
td a { margin-right: 8px; }
@media (max-width: 600px) {
  main { padding: 8px 10px 30px; }
  th:nth-child(3), td:nth-child(3) { display: none; }
}
"""#
}
