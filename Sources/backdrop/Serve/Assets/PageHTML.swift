// The page of `backdrop serve`: plain HTML, no build step, no CDN; styled by app.css, driven by app.js.
extension ServeAssets {
  static let html = #"""
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Backdrop</title>
<link rel="stylesheet" href="/app.css">
<script src="/app.js" defer></script>
</head>
<body>
<header><h1>Backdrop</h1><p>Remove or replace the background of a video, on this machine.</p></header>
<main>
  <section class="card" id="new-job">
    <h2>New video</h2>
    <label id="drop" class="drop" for="file">
      <input type="file" id="file" accept="video/*">
      <span id="drop-text">Drop a video here or <u>choose a file</u></span>
    </label>
    <div class="options">
      <label>Model <select id="model"></select></label>
      <label>Matte <select id="matte"><option value="binary">sharp (threshold)</option><option value="soft">soft</option></select></label>
      <fieldset><legend>Outputs</legend>
        <label><input type="checkbox" id="out-webm" checked> transparent WebM</label>
        <label><input type="checkbox" id="out-mp4" checked> MP4 on a backdrop</label>
      </fieldset>
      <label>Backdrop <select id="background">
        <option value="green">green screen</option><option value="color">a colour</option>
        <option value="image">an image</option><option value="blur">blur</option></select></label>
      <label id="color-row" hidden>Colour <input type="color" id="color" value="#3366cc"></label>
      <label id="image-row" hidden>Image <input type="file" id="image" accept="image/*"></label>
    </div>
    <button id="start" disabled>Remove background</button>
    <p id="error" class="error" role="alert" hidden></p>
  </section>

  <section class="card" id="current" hidden>
    <h2 id="current-title">Processing</h2>
    <div class="bar"><div id="bar-fill"></div></div>
    <p class="stats"><span id="percent">0 %</span> <span id="frames"></span> <span id="fps"></span> <span id="eta"></span> <span id="state"></span></p>
    <button id="cancel" class="secondary">Cancel</button>
    <div id="results" hidden>
      <div class="previews">
        <figure id="fig-checker"><div class="stage checker"><video id="preview-alpha" muted loop playsinline></video></div>
          <figcaption>Transparent WebM over a checkerboard</figcaption></figure>
        <figure id="fig-backdrop"><div class="stage" id="backdrop-stage"><video id="preview-over" muted loop playsinline></video></div>
          <figcaption>Over the chosen backdrop</figcaption></figure>
        <figure id="fig-mp4"><div class="stage"><video id="preview-mp4" muted loop playsinline controls></video></div>
          <figcaption>MP4</figcaption></figure>
      </div>
      <p class="downloads"><a id="download-webm" class="button" download hidden>Download WebM</a> <a id="download-mp4" class="button" download hidden>Download MP4</a></p>
    </div>
  </section>

  <section class="card">
    <h2>Jobs</h2>
    <table id="jobs"><thead><tr><th>Video</th><th>State</th><th>Progress</th><th>Files</th><th></th></tr></thead><tbody></tbody></table>
    <p id="no-jobs" class="muted">No jobs yet.</p>
  </section>
</main>
</body>
</html>
"""#
}
