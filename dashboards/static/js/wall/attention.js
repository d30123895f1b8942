// Drawing the eye to a new critical alert: the page title, a flash of the alert panel, an optional beep.
import { t } from "../i18n.js";
import { $ } from "../common.js";

const FLASH_MS = 12000;
let attentionUntil = 0;
let flashTimer = null;

const sound = {
  on: false,
  ctx: null,
  init() {
    try { this.on = localStorage.getItem("ioc.sound") === "on"; } catch { this.on = false; }
    const button = $("sound-toggle");
    const show = () => { button.setAttribute("aria-pressed", String(this.on)); button.dataset.on = String(this.on); };
    show();
    button.addEventListener("click", () => {
      this.on = !this.on;
      try { localStorage.setItem("ioc.sound", this.on ? "on" : "off"); } catch { /* ignore */ }
      if (this.on) this.beep();
      show();
    });
  },
  beep() {
    try {
      this.ctx = this.ctx || new AudioContext();
      const osc = this.ctx.createOscillator();
      const gain = this.ctx.createGain();
      osc.frequency.value = 880;
      gain.gain.setValueAtTime(0.2, this.ctx.currentTime);
      gain.gain.exponentialRampToValueAtTime(0.001, this.ctx.currentTime + 0.6);
      osc.connect(gain).connect(this.ctx.destination);
      osc.start();
      osc.stop(this.ctx.currentTime + 0.6);
    } catch { /* no audio device */ }
  },
};

/** Wire the sound toggle (its choice kept in localStorage). */
export function init() { sound.init(); }

/** The tab title: the count of open critical alerts, blinking for a while after a new one. */
export function renderTitle(alerts) {
  const crit = alerts.filter((a) => a.severity === "critical" && a.state === "open").length;
  const base = t("title.wall");
  const flashing = Date.now() < attentionUntil && Math.floor(Date.now() / 1000) % 2 === 0;
  const title = crit > 0 ? `${flashing ? "⚠⚠" : "⚠"} (${crit}) ${base}` : base;
  if (document.title !== title) document.title = title;
}

/** A new critical alert: flash the alert panel, blink the title, beep when the sound is on. */
export function draw() {
  const panel = $("panel-alerts");
  attentionUntil = Date.now() + FLASH_MS * 2.5;
  panel.classList.remove("flash");
  void panel.offsetWidth; // restart the animation
  panel.classList.add("flash");
  clearTimeout(flashTimer);
  flashTimer = setTimeout(() => panel.classList.remove("flash"), FLASH_MS);
  if (sound.on) sound.beep();
}
