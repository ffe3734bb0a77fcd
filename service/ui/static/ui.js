// The session browser's only script: conveniences on top of pages that work without it.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  // "Expand all" / "Collapse all" for the tool calls, tool results and JSON blocks.
  for (const toolbar of document.querySelectorAll(".toolbar")) {
    toolbar.hidden = false;
    for (const button of toolbar.querySelectorAll("button[data-details]")) {
      button.addEventListener("click", () => {
        const open = button.dataset.details === "open";
        for (const details of document.querySelectorAll("main details")) {
          details.open = open;
        }
      });
    }
  }
  // Show times in the reader's own zone on hover; the page itself says UTC.
  for (const time of document.querySelectorAll("time[datetime]")) {
    const when = new Date(time.getAttribute("datetime"));
    if (!Number.isNaN(when.getTime())) {
      time.title = `${when.toLocaleString()} (your time) · ${time.getAttribute("datetime")}`;
    }
  }
});
