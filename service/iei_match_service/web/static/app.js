/* The page of each role over the JSON API (/api/v1).
 *
 * Rules kept throughout: the API key lives in sessionStorage and travels only in the
 * Authorization header (never in a URL); text that came from users or files is put on the
 * page with textContent / text nodes, never parsed as HTML. */
"use strict";

(function () {
  const I = window.I18N;
  const t = I.t;
  const $ = (id) => document.getElementById(id);
  const KEY_STORE = "iei-key";
  const LEVELS = ["中职", "高职专科", "职教本科", "本科", "技工院校"];
  const OUTCOMES = ["contacted", "visited", "agreement_signed", "rejected"];
  const POLL_MS = 500;

  // ``gen`` changes at every sign-out: answers to requests of an earlier session are dropped.
  const state = { me: null, view: null, gen: 0 };

  /* ---------- DOM helpers ---------- */

  /** el("div", {class: "x", text: "..."}, child, "text", ...): no HTML parsing anywhere. */
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (name === "class") node.className = value;
      else if (name === "text") node.textContent = value;
      else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
      else if (name === "dataset") Object.assign(node.dataset, value);
      else node.setAttribute(name, value === true ? "" : String(value));
    }
    for (const child of children) {
      if (child === undefined || child === null || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
    return node;
  }

  function show(node, on) {
    node.hidden = !on;
  }

  function setStatus(node, text, kind) {
    node.textContent = text || "";
    node.className = "status" + (kind ? " " + kind : "");
  }

  function fmt(x, digits) {
    if (x === null || x === undefined || x === "") return "";
    if (typeof x === "number") {
      if (Number.isInteger(x)) return String(x);
      return x.toFixed(digits === undefined ? 3 : digits);
    }
    return String(x);
  }

  function escapeRegExp(s) {
    return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  }

  /** ``text`` with the ``terms`` wrapped in <mark>, as DOM nodes (never HTML). */
  function highlight(text, terms) {
    const frag = document.createDocumentFragment();
    text = text || "";
    const usable = Array.from(new Set((terms || []).map((x) => String(x).trim())))
      .filter((x) => x.length >= 2 || /[\u3400-\u9fff]/.test(x))
      .sort((a, b) => b.length - a.length);
    if (!usable.length) {
      frag.append(text);
      return frag;
    }
    const re = new RegExp(usable.map(escapeRegExp).join("|"), "giu");
    let last = 0;
    for (const m of text.matchAll(re)) {
      if (!m[0]) continue;
      frag.append(text.slice(last, m.index));
      frag.append(el("mark", {}, m[0]));
      last = m.index + m[0].length;
    }
    frag.append(text.slice(last));
    return frag;
  }

  /** Chips of ``items``; an item that ``via`` maps shows what the need wrote instead
   *  (a matched term it does not write: "驾驶员 ← 司机"). */
  function chips(items, cls, via) {
    const box = el("span", { class: "chips" });
    for (const item of items) {
      const chip = el("span", { class: "chip " + (cls || "") }, item);
      if (via && Object.prototype.hasOwnProperty.call(via, item)) {
        chip.append(el("span", { class: "via" }, t("rec.via", { x: via[item] })));
        chip.title = t("rec.via.title", { x: via[item], term: item });
      }
      box.append(chip);
    }
    return box;
  }

  /* ---------- the API ---------- */

  class ApiError extends Error {
    constructor(status, code, message, problems) {
      super(message);
      this.status = status;
      this.code = code;
      this.problems = problems || [];
    }
  }

  function getKey() {
    try {
      return window.sessionStorage.getItem(KEY_STORE);
    } catch (e) {
      return null;
    }
  }

  /** Call /api/v1``path``; the key goes in the Authorization header only. */
  async function request(method, path, options) {
    const opts = options || {};
    const gen = state.gen;
    const key = opts.key || getKey();
    const headers = { Accept: "application/json" };
    if (key) headers.Authorization = "Bearer " + key;
    let body;
    if (opts.json !== undefined) {
      headers["Content-Type"] = "application/json";
      body = JSON.stringify(opts.json);
    } else if (opts.form !== undefined) {
      body = opts.form;
    }
    let response;
    try {
      response = await fetch("/api/v1" + path, {
        method, headers, body, cache: "no-store", credentials: "omit", referrerPolicy: "no-referrer",
      });
    } catch (e) {
      throw new ApiError(0, gen === state.gen ? "network" : "stale", e.message || String(e));
    }
    if (gen !== state.gen) throw new ApiError(0, "stale", "an answer for an earlier session");
    if (!response.ok) {
      let code = "http_error";
      let message = response.statusText;
      let problems = [];
      try {
        const err = (await response.json()).error || {};
        code = err.code || code;
        message = err.message || message;
        problems = err.problems || [];
      } catch (e) { /* not JSON */ }
      const error = new ApiError(response.status, code, message, problems);
      if (response.status === 401 && !opts.key && state.me) {
        signOut(t("signin.expired"));
      }
      throw error;
    }
    if (opts.raw) return response;
    if (response.status === 204) return null;
    return response.json();
  }

  const api = {
    get: (path, o) => request("GET", path, o),
    post: (path, json) => request("POST", path, { json: json === undefined ? {} : json }),
    patch: (path, json) => request("PATCH", path, { json }),
    upload: (path, form) => request("POST", path, { form }),
  };

  /** A message for people: localised by the error's kind, with the server's words. */
  function describe(err) {
    if (!(err instanceof ApiError)) return String(err && err.message ? err.message : err);
    if (err.code === "stale") return "";
    if (err.status === 0) return t("error.network", { message: err.message });
    if (err.status === 404) return t("error.not_found") + " (" + err.message + ")";
    if (err.status === 403) return t("error.forbidden") + " (" + err.message + ")";
    if (err.status === 422) return t("error.invalid", { message: err.message });
    if (err.status === 503) return t("error.unavailable", { message: err.message });
    return t("error.generic", { status: err.status, message: err.message });
  }

  let noticeTimer = null;
  function notice(text, kind) {
    const box = $("notice");
    clear(box);
    if (!text) {
      show(box, false);
      return;
    }
    box.className = "notice " + (kind || "error");
    box.append(el("span", {}, text),
      el("button", { type: "button", class: "close", "aria-label": "×", onclick: () => notice("") }, "×"));
    show(box, true);
    if (noticeTimer) clearTimeout(noticeTimer);
    if (kind === "ok") noticeTimer = setTimeout(() => notice(""), 4000);
  }

  /** Save a download fetched with the key in a header, through a Blob URL. */
  async function download(path, filename) {
    const response = await request("GET", path, { raw: true });
    const blob = await response.blob();
    const url = URL.createObjectURL(blob);
    const a = el("a", { href: url, download: filename, hidden: true });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  }

  /* ---------- explanations ---------- */

  /** The fit level as a badge (高度匹配 / 一般匹配 / 匹配度低); the probability in its title. */
  function fitBadge(hit) {
    const level = ["high", "medium", "low"].includes(hit.fit_level) ? hit.fit_level : "low";
    return el("span", {
      class: "fit " + level, dataset: { fit: level },
      title: t("fit.prob", { p: Math.round(100 * (Number(hit.fit) || 0)) }),
    }, t("fit." + level));
  }

  /** The national catalog's majors that fit a need best: what to look for. */
  function renderReference(majors, nothingFits) {
    const box = $("reference-majors");
    const list = clear($("reference-list"));
    show(box, majors.length > 0);
    box.classList.toggle("nofit", nothingFits);
    $("reference-title").textContent = nothingFits ? t("ref.nofit") : t("ref.title");
    $("reference-help").textContent = nothingFits ? t("ref.nofit.help") : t("ref.help");
    for (const m of majors) {
      list.append(el("li", { dataset: { code: m.code } },
        el("strong", {}, m.title),
        el("span", { class: "code" }, m.code),
        m.level ? el("span", { class: "tag" }, I.level(m.level)) : null,
        m.group_name ? el("span", { class: "muted" }, m.group_name) : null,
        fitBadge(m),
        el("span", { class: m.offered_in_alliance ? "offered" : "notoffered" },
          t(m.offered_in_alliance ? "ref.offered" : "ref.notoffered"))));
    }
  }

  /** Show ``message`` under the form field ``id`` (cleared when the user edits it). */
  function fieldError(id, message) {
    const input = $(id);
    if (!input) return false;
    const label = input.closest("label") || input.parentElement;
    let box = label.querySelector(".field-error");
    if (!box) {
      box = el("span", { class: "field-error", role: "alert" });
      label.append(box);
    }
    const name = (label.querySelector("[data-i18n]") || {}).textContent || "";
    box.textContent = (name ? name.replace(/[（(].*$/, "").trim() + t("colon") : "") + message;
    input.setAttribute("aria-invalid", "true");
    const clearIt = () => {
      box.remove();
      input.removeAttribute("aria-invalid");
      input.removeEventListener("input", clearIt);
      input.removeEventListener("change", clearIt);
    };
    input.addEventListener("input", clearIt);
    input.addEventListener("change", clearIt);
    return true;
  }

  function clearFieldErrors(form) {
    for (const box of form.querySelectorAll(".field-error")) box.remove();
    for (const input of form.querySelectorAll("[aria-invalid]")) input.removeAttribute("aria-invalid");
  }

  /** A validation problem in the page's language: what is wrong, with the limit it broke. */
  function problemText(p) {
    const limits = p.limits || {};
    const kind = p.type || "";
    const known = {
      missing: "verr.missing", string_too_long: "verr.too_long", string_too_short: "verr.missing",
      too_long: "verr.too_many", greater_than_equal: "verr.min", less_than_equal: "verr.max",
      greater_than: "verr.min", less_than: "verr.max", int_parsing: "verr.number",
      int_from_float: "verr.number", float_parsing: "verr.number", literal_error: "verr.choice",
      string_type: "verr.text",
    }[kind];
    const limit = limits.max_length ?? limits.min_length ?? limits.ge ?? limits.le ?? limits.gt ?? limits.lt;
    return known ? t(known, { n: limit === undefined ? "" : limit }) : t("verr.other");
  }

  /** Put each problem of a 422 answer under its form field; false when none has a field. */
  function showFieldErrors(problems, prefix) {
    let shown = false;
    for (const p of problems || []) {
      const parts = String(p.location || "").split(".");
      if (parts[0] !== "body" || parts.length < 2) continue;
      shown = fieldError(prefix + parts[1], problemText(p)) || shown;
    }
    return shown;
  }

  /** A date and time in words, in the page's language. */
  function when(value) {
    if (!value) return "";
    const d = new Date(value);
    if (Number.isNaN(d.getTime())) return String(value);
    return d.toLocaleString(I.lang === "zh" ? "zh-CN" : "en-GB", { dateStyle: "long", timeStyle: "short" });
  }

  /** A model's quality as people read it: ranking quality and calibration on held-out needs. */
  function modelQuality(m) {
    const out = [];
    const held = m.holdout && m.holdout["need->program"];
    const ndcg = held ? held["ndcg@10"] : m.holdout_ndcg10;
    if (typeof ndcg === "number") out.push(t("model.ndcg", { x: fmt(ndcg, 3) }));
    const ece = held && typeof held.ece === "number" ? held.ece : (m.fit_oof && m.fit_oof.ece);
    if (typeof ece === "number") out.push(t("model.ece", { x: fmt(ece, 3) }));
    if (m.data && typeof m.data === "object") {
      out.push(t("model.data", { needs: fmt(m.data.needs), programs: fmt(m.data.programs), links: fmt(m.data.links) }));
    }
    if (typeof m.fit_seconds === "number") out.push(t("model.seconds", { s: Math.round(m.fit_seconds) }));
    return out;
  }

  /** A job's progress message in the page's language. */
  function jobMessage(message) {
    const m = /^scoring: (\d+) of (\d+) partitions, (\d+) rows$/.exec(message || "");
    if (m) return t("job.msg.scoring", { done: m[1], total: m[2], rows: m[3] });
    const key = { "scoring": "job.msg.start", "reference majors": "job.msg.reference",
      "allocating": "job.msg.allocating", "gap report": "job.msg.gap",
      "reading training data": "job.msg.reading", "saving the new model": "job.msg.saving" }[message];
    return key ? t(key) : (message || "");
  }

  function factorChart(factors) {
    const chart = el("div", { class: "factors", role: "img" });
    const list = (factors || []).slice(0, 8);
    const max = Math.max(1e-9, ...list.map((f) => Math.abs(f.contribution)));
    for (const f of list) {
      const label = I.lang === "zh" ? (f.label_zh || f.label) : (f.label || f.label_zh);
      const width = (Math.abs(f.contribution) / max) * 50;
      const bar = el("span", { class: "fbar " + (f.contribution >= 0 ? "pos" : "neg") });
      bar.style.width = width.toFixed(1) + "%";
      if (f.contribution >= 0) bar.style.left = "50%";
      else bar.style.left = (50 - width).toFixed(1) + "%";
      chart.append(
        el("span", { class: "flabel", title: f.feature }, label),
        el("span", { class: "ftrack" }, el("span", { class: "faxis" }), bar),
        el("span", { class: "fval" }, (f.contribution >= 0 ? "+" : "") + f.contribution.toFixed(3)),
      );
    }
    chart.setAttribute("aria-label", t("rec.factors"));
    return chart;
  }

  function explanation(exp, text, missingLabel) {
    const box = el("div", { class: "why" });
    box.append(el("h4", {}, t("rec.why")));
    const terms = exp.matched_terms || [];
    box.append(el("div", { class: "line" }, el("span", { class: "k" }, t("rec.matched")),
      terms.length ? chips(terms, "hit", exp.matched_via) : el("span", { class: "muted" }, t("none"))));
    const missing = exp.missing_skills || [];
    box.append(el("div", { class: "line missing" }, el("span", { class: "k" }, missingLabel),
      missing.length ? chips(missing, "miss") : el("span", { class: "muted" }, t("rec.missing.none"))));
    box.append(el("div", { class: "line" }, el("span", { class: "k" }, t("rec.factors"))));
    box.append(factorChart(exp.factors));
    if (text) box.append(el("p", { class: "text" }, highlight(text, terms)));
    return box;
  }

  /** The outcome recorder of a (need, program) pair, with its current stage. */
  function outcomeBox(needId, programId, stages) {
    const key = needId + ":" + programId;
    const stage = stages.get(key);
    const badge = el("span", { class: "badge" + (stage ? "" : " none") },
      stage ? t("rec.stage", { event: t("event." + stage) }) : "");
    const select = el("select", { "aria-label": t("rec.outcome") });
    for (const e of OUTCOMES) select.append(el("option", { value: e }, t("event." + e)));
    const status = el("span", { class: "status", role: "status" });
    const button = el("button", {
      type: "button", class: "small",
      onclick: async () => {
        button.disabled = true;
        try {
          const r = await api.post("/outcomes", { need_id: needId, program_id: programId, event: select.value });
          stages.set(key, r.stage);
          badge.textContent = t("rec.stage", { event: t("event." + r.stage) });
          badge.className = "badge";
          setStatus(status, t("rec.outcome.done", { event: t("event." + r.stage) }), "ok");
        } catch (e) {
          setStatus(status, describe(e), "error");
        } finally {
          button.disabled = false;
        }
      },
    }, t("rec.outcome.record"));
    return el("div", { class: "outcome" }, el("span", { class: "k" }, t("rec.outcome")), select, button, badge, status);
  }

  async function loadStages() {
    const stages = new Map();
    const r = await api.get("/partnerships?limit=1000");
    for (const p of r.items) stages.set(p.need_id + ":" + p.program_id, p.stage);
    return stages;
  }

  /* ---------- enterprise ---------- */

  const enterprise = {
    needs: [],
    current: null,
    recs: null,
    stages: new Map(),

    async enter() {
      fillLevels($("need-level"));
      this.blank();
      await this.loadNeeds();
      await this.route();
    },

    async loadNeeds() {
      const r = await api.get("/needs?limit=1000");
      this.needs = r.items;
      this.renderList();
    },

    renderList() {
      const list = clear($("need-list"));
      if (!this.needs.length) list.append(el("li", { class: "muted" }, t("ent.none")));
      for (const n of this.needs) {
        const active = this.current && this.current.id === n.id;
        list.append(el("li", {},
          el("a", { href: "#need/" + n.id, class: active ? "active" : "", dataset: { id: n.id } },
            el("span", { class: "title" }, n.title),
            el("span", { class: "meta" }, t("headcount.n", { n: n.headcount }) + " · " + I.level(n.level) +
              (n.city ? " · " + n.city : "")))));
      }
    },

    blank() {
      this.current = null;
      this.recs = null;
      const org = state.me.org;
      for (const name of ["title", "description", "skills"]) $("need-" + name).value = "";
      $("need-headcount").value = "1";
      $("need-level").value = "";
      $("need-province").value = org.province || "";
      $("need-city").value = org.city || "";
      $("need-form-title").dataset.i18n = "ent.form.new";
      $("need-form-title").textContent = t("ent.form.new");
      setStatus($("need-form-status"), "");
      this.renderRecs();
    },

    fill(need) {
      $("need-title").value = need.title;
      $("need-description").value = need.description || "";
      $("need-skills").value = (need.skills || []).join(", ");
      $("need-headcount").value = String(need.headcount);
      $("need-level").value = need.level || "";
      $("need-province").value = need.province || "";
      $("need-city").value = need.city || "";
      $("need-form-title").dataset.i18n = "ent.form.edit";
      $("need-form-title").textContent = t("ent.form.edit");
    },

    async route() {
      const m = /^#need\/(\d+)$/.exec(window.location.hash);
      if (!m) {
        // A new need's form is left as it is: what was typed before the list arrived
        // (sign-in) stays; leaving a need opens a blank form.
        if (this.current) this.blank();
        this.renderList();
        return;
      }
      const id = Number(m[1]);
      try {
        this.current = await api.get("/needs/" + id);
      } catch (e) {
        this.blank();
        this.renderList();
        notice(e.status === 404 ? t("ent.notfound") : describe(e));
        return;
      }
      notice("");
      this.fill(this.current);
      this.renderList();
      await this.loadRecs();
    },

    async save(event) {
      event.preventDefault();
      const body = {
        title: $("need-title").value.trim(),
        description: $("need-description").value,
        skills: $("need-skills").value.split(/[,，、;；\n]+/).map((s) => s.trim()).filter(Boolean),
        headcount: Number($("need-headcount").value) || 1,
        level: $("need-level").value,
        province: $("need-province").value.trim(),
        city: $("need-city").value.trim(),
      };
      const status = $("need-form-status");
      clearFieldErrors($("need-form"));
      if (!body.title) {
        fieldError("need-title", t("verr.missing"));
        setStatus(status, t("form.fix"), "error");
        return;
      }
      try {
        const saved = this.current
          ? await api.patch("/needs/" + this.current.id, body)
          : await api.post("/needs", body);
        setStatus(status, t("saved"), "ok");
        await this.loadNeeds();
        if (window.location.hash === "#need/" + saved.id) await this.route();
        else window.location.hash = "need/" + saved.id;
      } catch (e) {
        if (e.status === 422 && showFieldErrors(e.problems, "need-")) setStatus(status, t("form.fix"), "error");
        else setStatus(status, describe(e), "error");
      }
    },

    async loadRecs() {
      if (!this.current) return;
      const id = this.current.id;
      this.recs = null;
      this.renderRecs();
      setStatus($("recs-status"), t("loading"));
      try {
        const near = $("recs-near").value;
        const low = $("recs-low").checked ? "&include_low=true" : "";
        const [recs, stages] = await Promise.all([
          api.get("/needs/" + id + "/recommendations?k=10&near=" + encodeURIComponent(near) + low),
          loadStages(),
        ]);
        if (!this.current || this.current.id !== id) return;
        this.recs = recs;
        this.stages = stages;
        this.renderRecs();
      } catch (e) {
        this.recs = null;
        setStatus($("recs-status"), describe(e), "error");
      }
    },

    renderRecs() {
      const list = clear($("rec-list"));
      const title = $("recs-title");
      if (!this.current) {
        title.textContent = t("ent.recs");
        setStatus($("recs-status"), t("ent.pick"));
        return;
      }
      title.textContent = t("ent.recs.for", { title: this.current.title });
      if (!this.recs) {
        show($("reference-majors"), false);
        return;
      }
      const items = this.recs.items;
      const fitting = items.filter((h) => h.fit_level !== "low");
      const majors = this.recs.reference_majors || [];
      const lang = (this.recs.warnings || []).length ? t("lang.en.warn")
        : (this.recs.language === "en" ? t("lang.en.bridged") : "");
      setStatus($("recs-status"), lang ? lang : items.length
        ? (fitting.length ? "" : t("ent.recs.onlylow"))
        : (this.recs.include_low ? t("ent.recs.none") : t(majors.length ? "ref.nofit.short" : "ref.nofit.none")),
      lang || !fitting.length ? "warn" : "");
      for (const hit of items) list.append(this.card(hit));
      renderReference(majors, fitting.length === 0);
    },

    card(hit) {
      const p = hit.program;
      const c = hit.college;
      const place = [c.city, c.province].filter(Boolean).filter((x, i, a) => a.indexOf(x) === i).join(" · ");
      const bases = hit.training_bases.length
        ? hit.training_bases.map((b) => b.name +
          (b.city || b.province ? t("paren", { x: [b.province, b.city].filter(Boolean)
            .filter((x, i, a) => a.indexOf(x) === i).join(" · ") }) : "") +
          (b.capacity ? " " + t("rec.capacity", { n: b.capacity }) : "")).join(t("sep"))
        : t("rec.bases.none");
      return el("li", { class: "card " + hit.fit_level, dataset: { program: p.id, fit: hit.fit_level } },
        el("div", { class: "head" },
          el("span", { class: "rank" }, "#" + hit.rank),
          el("h3", {}, p.title),
          p.code ? el("span", { class: "code" }, p.code) : null,
          el("span", { class: "tag" }, I.level(p.level)),
          fitBadge(hit),
          el("span", { class: "score", title: t("rec.score.help") }, t("rec.score") + " " + fmt(hit.score))),
        el("p", { class: "meta" }, el("span", { class: "k" }, t("rec.college")), c.name,
          place ? " · " + place : "",
          p.graduates_per_year ? " · " + t("rec.grads", { n: p.graduates_per_year }) : ""),
        el("p", { class: "meta bases" }, el("span", { class: "k" }, t("rec.bases")), bases),
        explanation(hit.explanation, p.description, t("rec.missing")),
        outcomeBox(this.current.id, p.id, this.stages));
    },
  };

  function fillLevels(select) {
    const value = select.value;
    clear(select);
    select.append(el("option", { value: "" }, t("level.any")));
    for (const level of LEVELS) select.append(el("option", { value: level }, I.level(level)));
    select.value = value;
  }

  /* ---------- college ---------- */

  const college = {
    programs: [],
    current: null,
    partners: null,
    stages: new Map(),

    async enter() {
      const r = await api.get("/programs?limit=1000");
      this.programs = r.items;
      this.renderSelect();
      await this.route();
    },

    renderSelect() {
      const select = clear($("program-select"));
      for (const p of this.programs) {
        select.append(el("option", { value: p.id }, p.title + (p.code ? " (" + p.code + ")" : "")));
      }
      if (this.current) select.value = String(this.current.id);
    },

    async route() {
      if (!this.programs.length) {
        setStatus($("partners-status"), t("col.noprograms"));
        return;
      }
      const m = /^#program\/(\d+)$/.exec(window.location.hash);
      const id = m ? Number(m[1]) : this.programs[0].id;
      try {
        this.current = await api.get("/programs/" + id);
      } catch (e) {
        notice(describe(e));
        this.current = null;
        this.partners = null;
        this.render();
        return;
      }
      notice("");
      $("program-select").value = String(id);
      setStatus($("partners-status"), t("loading"));
      clear($("partner-list"));
      try {
        const [partners, stages] = await Promise.all([
          api.get("/programs/" + id + "/partners?k=10" + ($("partners-low").checked ? "&include_low=true" : "")),
          loadStages()]);
        if (!this.current || this.current.id !== id) return;
        this.partners = partners;
        this.stages = stages;
        this.render();
      } catch (e) {
        setStatus($("partners-status"), describe(e), "error");
      }
    },

    render() {
      const p = this.current;
      $("program-info").textContent = p
        ? [p.code, I.level(p.level), p.graduates_per_year ? t("rec.grads", { n: p.graduates_per_year }) : ""]
          .filter(Boolean).join(" · ")
        : "";
      $("partners-title").textContent = p ? t("col.partners.for", { title: p.title }) : t("col.partners");
      const list = clear($("partner-list"));
      const gaps = clear($("skill-gap-table"));
      show($("skill-gaps"), false);
      if (!this.partners) return;
      setStatus($("partners-status"), this.partners.items.length ? ""
        : (this.partners.include_low ? t("col.none") : t("col.none.fit")));
      for (const hit of this.partners.items) list.append(this.card(hit));
      const rows = this.partners.skill_gaps || [];
      if (rows.length) {
        show($("skill-gaps"), true);
        const head = el("tr", {}, ...["gaps.skill", "gaps.needs", "gaps.headcount"].map((k) => el("th", {}, t(k))));
        const body = el("tbody", {}, ...rows.map((g) => el("tr", { dataset: { skill: g.skill } },
          el("td", {}, g.skill), el("td", {}, fmt(g.needs)), el("td", {}, fmt(g.headcount)))));
        gaps.append(el("div", { class: "tablewrap" }, el("table", { class: "data" }, el("thead", {}, head), body)));
      }
    },

    card(hit) {
      const n = hit.need;
      const e = hit.enterprise;
      return el("li", { class: "card " + hit.fit_level, dataset: { need: n.id, fit: hit.fit_level } },
        el("div", { class: "head" },
          el("span", { class: "rank" }, "#" + hit.rank),
          el("h3", {}, n.title),
          el("span", { class: "tag" }, I.level(n.level)),
          fitBadge(hit),
          el("span", { class: "score", title: t("rec.score.help") }, t("rec.score") + " " + fmt(hit.score))),
        el("p", { class: "meta" }, el("span", { class: "k" }, t("col.enterprise")), e.name,
          e.city ? " · " + e.city : "", " · " + t("headcount.n", { n: n.headcount })),
        (n.skills || []).length
          ? el("p", { class: "meta" }, el("span", { class: "k" }, t("field.skills").replace(/[（(].*$/, "")), chips(n.skills))
          : null,
        explanation(hit.explanation, n.description, t("rec.missing")),
        outcomeBox(n.id, this.current.id, this.stages));
    },
  };

  /* ---------- coordinator ---------- */

  const KIND_OWNERS = { needs: ["enterprise"], programs: ["college"], bases: ["enterprise", "college"] };

  function problemsTable(problems) {
    const hasFile = problems.some((p) => p.file);
    const head = el("tr", {});
    if (hasFile) head.append(el("th", {}, t("problems.file")));
    head.append(el("th", {}, t("problems.row")), el("th", {}, t("problems.column")), el("th", {}, t("problems.message")));
    const body = el("tbody", {});
    for (const p of problems) {
      const row = el("tr", {});
      if (hasFile) row.append(el("td", {}, p.file || ""));
      row.append(el("td", {}, p.row === null || p.row === undefined ? "" : String(p.row)),
        el("td", {}, p.column || p.location || ""), el("td", {}, p.message || ""));
      body.append(row);
    }
    return el("table", { class: "data problems" }, el("thead", {}, head), body);
  }

  function dataTable(result, preferred) {
    const items = result.items || [];
    if (!items.length) return el("p", { class: "muted" }, t("none"));
    const keys = Object.keys(items[0]);
    const cols = (preferred || []).filter((k) => keys.includes(k)).concat(keys.filter((k) => !(preferred || []).includes(k)));
    const numeric = (k) => typeof items[0][k] === "number";
    const head = el("tr", {}, ...cols.map((k) => el("th", { class: numeric(k) ? "num" : "" },
      t("col." + k) === "col." + k ? k : t("col." + k))));
    const body = el("tbody", {});
    for (const item of items) body.append(el("tr", {}, ...cols.map((k) => el("td", { class: typeof item[k] === "number" ? "num" : "" }, fmt(item[k])))));
    const wrap = el("div", { class: "tablewrap" }, el("table", { class: "data" }, el("thead", {}, head), body));
    const frag = document.createDocumentFragment();
    frag.append(wrap);
    if (result.total !== undefined && result.total > items.length) {
      frag.append(el("p", { class: "muted" }, t("co.rows.shown", { shown: items.length, total: result.total })));
    }
    return frag;
  }

  // The 19 categories (大类) of China's vocational catalog, in code order; their codes are
  // 61-79 for 中职, 41-59 for 高职专科 and 21-39 for 职教本科 majors.
  const CN_CATEGORIES = ["农林牧渔", "资源环境与安全", "能源动力与材料", "土木建筑", "水利", "装备制造",
    "生物与化工", "轻工纺织", "食品药品与粮食", "交通运输", "电子与信息", "医药卫生", "财经商贸", "旅游",
    "文化艺术", "新闻传播", "教育与体育", "公安与司法", "公共管理与服务"];
  const CN_CATEGORIES_EN = ["agriculture, forestry, animal husbandry and fishery",
    "resources, environment and safety", "energy, power and materials", "civil engineering and architecture",
    "water conservancy", "equipment manufacturing", "biology and chemical engineering",
    "light industry and textiles", "food, drugs and grain", "transport", "electronics and information",
    "medicine and health", "finance and commerce", "tourism", "culture and arts",
    "journalism and communication", "education and sports", "public security and justice",
    "public administration and services"];
  const CN_LEVEL_BASE = { "中职": 61, "高职专科": 41, "职教本科": 21 };

  function categoryLabel(code, level) {
    if (code === "(no program)") return t("co.gap.noprogram");
    if (code === "(unknown)") return t("co.gap.unknown");
    const base = CN_LEVEL_BASE[level];
    const i = /^\d{2}$/.test(code) && base ? Number(code) - base : -1;
    if (i < 0 || i >= CN_CATEGORIES.length) return code;
    return code + " " + (I.lang === "zh" ? CN_CATEGORIES[i] + "大类" : CN_CATEGORIES_EN[i]);
  }

  /** A gap row's group as people read it: 4607 汽车制造类 · 装备制造大类. */
  function groupLabel(r) {
    const group = r.group || r.category || "—";
    if (group === "(no program)" || group === "(unknown)") return categoryLabel(group, r.level);
    if (!r.group_name || r.group_name === group) return categoryLabel(group, r.level);
    const category = r.category_name && r.category_name !== r.category
      ? (I.lang === "zh" ? r.category_name : categoryLabel(r.category, "高职专科").replace(/^\d+ /, ""))
      : "";
    return group + " " + r.group_name + (category && group !== r.category ? " · " + category : "");
  }

  /** A group × province grid, coloured by shortfall (demand − supply), shortages first. */
  function heatmap(rows) {
    if (!rows.length) return el("p", { class: "muted" }, t("co.gap.none"));
    const labels = new Map();
    const cells = new Map();
    const catTotal = new Map();
    const provTotal = new Map();
    for (const r of rows) {
      const cat = r.group || r.category || "—";
      const prov = r.province || "—";
      const label = groupLabel(r);
      if (!labels.has(cat) || labels.get(cat) === cat) labels.set(cat, label);
      const key = cat + "\u0000" + prov;
      const c = cells.get(key) || { demand: 0, supply: 0, shortfall: 0 };
      c.demand += Number(r.demand) || 0;
      c.supply += Number(r.supply) || 0;
      c.shortfall += Number(r.shortfall) || 0;
      cells.set(key, c);
      catTotal.set(cat, (catTotal.get(cat) || 0) + (Number(r.shortfall) || 0));
      provTotal.set(prov, (provTotal.get(prov) || 0) + (Number(r.demand) || 0) + (Number(r.supply) || 0));
    }
    const cats = Array.from(catTotal.keys()).sort((a, b) => catTotal.get(b) - catTotal.get(a)).slice(0, 40);
    const provs = Array.from(provTotal.keys()).sort((a, b) => provTotal.get(b) - provTotal.get(a)).slice(0, 25);
    const max = Math.max(1, ...Array.from(cells.values()).map((c) => c.shortfall));
    const head = el("tr", {}, el("th", { class: "corner" }, t("col.group") + " \\ " + t("col.province")),
      ...provs.map((p) => el("th", { scope: "col" }, p === "(unknown)" ? t("co.gap.unknown") : p)));
    const body = el("tbody", {});
    for (const cat of cats) {
      const row = el("tr", {}, el("th", { scope: "row" }, labels.get(cat) || cat));
      for (const prov of provs) {
        const c = cells.get(cat + "\u0000" + prov);
        if (!c) {
          row.append(el("td", { class: "empty" }));
          continue;
        }
        const td = el("td", {
          class: c.shortfall > 0 ? "short" : "ok",
          title: t("col.demand") + " " + fmt(c.demand) + " / " + t("col.supply") + " " + fmt(c.supply) +
            " / " + t("col.shortfall") + " " + fmt(c.shortfall),
          dataset: { category: cat, province: prov },
        }, fmt(Math.round(c.shortfall)));
        if (c.shortfall > 0) {
          const a = 0.15 + 0.85 * (c.shortfall / max);
          td.style.backgroundColor = "rgba(200, 40, 40, " + a.toFixed(2) + ")";
          if (a > 0.55) td.style.color = "#fff";
        }
        row.append(td);
      }
      body.append(row);
    }
    return el("div", { class: "tablewrap" }, el("table", { class: "heat" }, el("thead", {}, head), body));
  }

  function jobView(prefix) {
    return {
      show(job) {
        show($(prefix + "-job"), true);
        const pct = Math.round((job.progress || 0) * 100);
        $(prefix + "-job-label").textContent = t("job.label", { id: job.id, state: t("job.state." + job.state) });
        $(prefix + "-job-pct").textContent = pct + "%";
        const bar = $(prefix + "-progress");
        bar.setAttribute("aria-valuenow", String(pct));
        bar.className = "bar " + job.state;
        bar.firstElementChild.style.width = pct + "%";
        // A finished job's label says so; its last step's message would read as if it were not.
        $(prefix + "-job-message").textContent = ["queued", "running"].includes(job.state) || job.state === "failed"
          ? jobMessage(job.message) : "";
      },
    };
  }

  /** Poll a job until it ends; ``onUpdate`` sees each state. */
  async function watchJob(id, onUpdate) {
    for (;;) {
      const job = await api.get("/jobs/" + id);
      onUpdate(job);
      if (!["queued", "running"].includes(job.state)) return job;
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    }
  }

  const coordinator = {
    tab: "import",
    owners: [],
    batchJob: null,
    results: null,
    models: null,

    async enter() {
      this.select(this.tab);
      await Promise.all([this.loadOwners(), this.loadModels(), this.resumeJobs()]);
    },

    select(tab) {
      this.tab = tab;
      for (const b of document.querySelectorAll("#view-coordinator [data-tab]")) {
        b.setAttribute("aria-selected", String(b.dataset.tab === tab));
      }
      for (const name of ["import", "batch", "models"]) show($("tab-" + name), name === tab);
    },

    async loadOwners() {
      const r = await api.get("/organizations?limit=1000");
      this.owners = r.items;
      this.renderOwners();
    },

    renderOwners() {
      const select = $("import-owner");
      const value = select.value;
      clear(select);
      const kinds = KIND_OWNERS[$("import-kind").value] || [];
      for (const o of this.owners.filter((x) => kinds.includes(x.kind))) {
        select.append(el("option", { value: o.id }, o.name + " (#" + o.id + ")"));
      }
      if (Array.from(select.options).some((o) => o.value === value)) select.value = value;
    },

    async upload(event) {
      event.preventDefault();
      const status = $("import-status");
      const problems = clear($("import-problems"));
      const file = $("import-file").files[0];
      if (!file) {
        setStatus(status, t("co.import.nofile"), "error");
        return;
      }
      const form = new FormData();
      form.append("file", file, file.name);
      if ($("import-owner").value) form.append("org_id", $("import-owner").value);
      setStatus(status, t("loading"));
      try {
        const r = await api.upload("/imports/" + $("import-kind").value, form);
        setStatus(status, t("co.import.ok", { n: r.created }), "ok");
      } catch (e) {
        if (e.problems && e.problems.length) {
          setStatus(status, t("co.import.failed", { message: t("problems.count", { n: e.problems.length }) }), "error");
          problems.append(problemsTable(e.problems));
        } else {
          setStatus(status, e.status === 422 ? t("co.import.failed", { message: e.message }) : describe(e), "error");
        }
      }
    },

    async startBatch(event) {
      event.preventDefault();
      const status = $("batch-status");
      const problems = clear($("batch-problems"));
      const fromFiles = document.querySelector("input[name=source]:checked").value === "files";
      const topK = Number($("batch-topk").value) || 10;
      const allocate = $("batch-allocate").checked;
      const minScore = $("batch-minscore").value;
      const minFit = $("batch-minfit").value;
      const maxPartners = $("batch-maxpartners").value;
      setStatus(status, "");
      show($("batch-results"), false);
      show($("batch-job"), false);
      this.results = null;
      let job;
      try {
        if (fromFiles) {
          const needs = $("batch-needs").files[0];
          const programs = $("batch-programs").files[0];
          if (!needs || !programs) {
            setStatus(status, t("co.batch.nofiles"), "error");
            return;
          }
          const form = new FormData();
          form.append("needs", needs, needs.name);
          form.append("programs", programs, programs.name);
          form.append("top_k", String(topK));
          form.append("allocate", String(allocate));
          if (minScore !== "") form.append("min_score", minScore);
          if (minFit !== "") form.append("min_fit", minFit);
          if (maxPartners !== "") form.append("max_partners_per_college", maxPartners);
          job = await api.upload("/batch/upload", form);
        } else {
          job = await api.post("/batch", {
            top_k: topK, allocate,
            min_score: minScore === "" ? null : Number(minScore),
            min_fit: minFit === "" ? null : Number(minFit),
            max_partners_per_college: maxPartners === "" ? null : Number(maxPartners),
          });
        }
      } catch (e) {
        if (e.status === 404 || e.status === 405) setStatus(status, t("co.batch.unavailable", { message: e.message }), "error");
        else if (e.problems && e.problems.length) {
          setStatus(status, t("co.batch.refused", { message: e.message }), "error");
          problems.append(problemsTable(e.problems));
        } else setStatus(status, describe(e), "error");
        return;
      }
      await this.watchBatch(job);
    },

    async watchBatch(job) {
      this.batchJob = job;
      const view = jobView("batch");
      view.show(job);
      $("batch-start").disabled = true;
      show($("batch-cancel"), true);
      try {
        const done = await watchJob(job.id, (j) => {
          this.batchJob = j;
          view.show(j);
        });
        if (done.state === "succeeded") await this.loadResults(done);
        else if (done.state === "failed") setStatus($("batch-status"), done.message, "error");
      } catch (e) {
        setStatus($("batch-status"), describe(e), "error");
      } finally {
        $("batch-start").disabled = false;
        show($("batch-cancel"), false);
      }
    },

    async cancelBatch() {
      if (!this.batchJob) return;
      try {
        await api.post("/jobs/" + this.batchJob.id + "/cancel");
      } catch (e) {
        setStatus($("batch-status"), describe(e), "error");
      }
    },

    async loadResults(job) {
      const base = "/jobs/" + job.id + "/results/";
      const names = (job.result && job.result.results) || [];
      const get = (name, limit) => (names.includes(name)
        ? api.get(base + name + "?format=json&limit=" + limit) : Promise.resolve({ items: [], total: 0 }));
      // The heatmap needs every gap row: pages of 1000 (the API's largest), at most 10.
      const getAll = async (name) => {
        const all = { items: [], total: 0 };
        if (!names.includes(name)) return all;
        do {
          const page = await api.get(base + name + "?format=json&limit=1000&offset=" + all.items.length);
          all.total = page.total;
          all.items.push(...page.items);
          if (!page.items.length) break;
        } while (all.items.length < all.total && all.items.length < 10000);
        return all;
      };
      const [allocation, unmet, gap] = await Promise.all([get("allocation", 200), get("unmet", 200), getAll("gap")]);
      this.results = { job, allocation, unmet, gap };
      this.renderResults();
    },

    renderResults() {
      const r = this.results;
      if (!r) return;
      const res = r.job.result || {};
      show($("batch-results"), true);
      $("batch-summary").textContent = t("job.label", { id: r.job.id, state: t("job.state." + r.job.state) }) +
        " · " + t("co.summary", { needs: fmt(res.needs), programs: fmt(res.programs) });
      const notes = clear($("batch-notes"));
      for (const note of res.notes || []) notes.append(el("li", {}, note));
      const a = res.allocation;
      $("alloc-summary").textContent = a
        ? t("co.alloc.summary", {
          assigned: fmt(a.assigned), demand: fmt(a.demand), supply: fmt(a.supply),
          objective: fmt(a.objective), gini: fmt(a.gini), status: fmt(a.status),
        }) + (a.unmet_no_fitting_program
          ? " " + t("co.alloc.nofit", { n: fmt(a.unmet_no_fitting_program) }) : "")
        : "";
      const downloads = clear($("downloads"));
      downloads.append(el("span", { class: "k" }, t("co.download")));
      for (const name of res.results || []) {
        for (const format of ["xlsx", "csv"]) {
          downloads.append(el("button", {
            type: "button", class: "small", dataset: { result: name, format },
            onclick: () => download(
              "/jobs/" + r.job.id + "/results/" + encodeURIComponent(name) + "?format=" + format,
              "iei-match-batch-" + r.job.id + "-" + name + "." + format,
            ).catch((e) => notice(describe(e))),
          }, (t("result." + name) === "result." + name ? name : t("result." + name)) + " · " + format.toUpperCase()));
        }
      }
      clear($("gap-heatmap")).append(heatmap(r.gap.items || []));
      clear($("alloc-table")).append(dataTable(r.allocation,
        ["need_title", "enterprise", "program_title", "college", "assigned", "score", "need_id", "program_id"]));
      const unmet = clear($("unmet-table"));
      const open = { items: (r.unmet.items || []).filter((x) => Number(x.unmet) > 0), total: undefined };
      if (!open.items.length) unmet.append(el("p", { class: "muted" }, t("co.unmet.none")));
      else {
        const rows = open.items.map((x) => Object.assign({}, x, {
          reason: x.reason ? t("reason." + x.reason) : "",
        }));
        unmet.append(dataTable({ items: rows, total: undefined },
          ["need_title", "enterprise", "headcount", "assigned", "unmet", "reason", "reference_title", "reference_group", "need_id"]));
      }
    },

    async loadModels() {
      try {
        this.models = await api.get("/models");
        this.renderModels();
      } catch (e) {
        setStatus($("models-status"), describe(e), "error");
      }
    },

    renderModels() {
      if (!this.models) return;
      const box = clear($("models-table"));
      const steward = state.me.role === "admin";  // one live model serves every alliance
      $("retrain").disabled = !steward;
      $("retrain-force").disabled = !steward;
      const head = el("tr", {}, ...["version", "created", "mode", "metrics"].map((k) => el("th", {}, t("co.models." + k))), el("th", {}));
      const body = el("tbody", {});
      for (const v of this.models.items.slice().reverse()) {
        const metrics = modelQuality(v.metrics || {});
        const action = v.live
          ? el("span", { class: "badge live" }, t("co.models.live"))
          : el("button", {
            type: "button", class: "small", disabled: !steward, dataset: { version: v.version },
            onclick: () => this.activate(v.version),
          }, t("co.models.activate"));
        body.append(el("tr", { class: v.live ? "live" : "", dataset: { version: v.version } },
          el("td", { class: "mono" }, v.version), el("td", { class: "nowrap" }, when(v.created)),
          el("td", {}, v.mode ? t("mode." + v.mode) : ""), el("td", { class: "metrics" }, metrics.join(" · ")), el("td", {}, action)));
      }
      box.append(el("div", { class: "tablewrap" }, el("table", { class: "data" }, el("thead", {}, head), body)));
    },

    async activate(version) {
      try {
        await api.post("/models/" + encodeURIComponent(version) + "/activate");
        setStatus($("models-status"), t("co.models.activated", { version }), "ok");
      } catch (e) {
        setStatus($("models-status"), describe(e), "error");
      }
      await this.loadModels();
    },

    async retrain() {
      const button = $("retrain");
      button.disabled = true;
      setStatus($("models-status"), "");
      try {
        const job = await api.post("/models/retrain", { force: $("retrain-force").checked });
        await this.watchRetrain(job);
      } catch (e) {
        setStatus($("models-status"), describe(e), "error");
      } finally {
        button.disabled = false;
      }
    },

    async watchRetrain(job) {
      const view = jobView("retrain");
      view.show(job);
      const done = await watchJob(job.id, (j) => view.show(j));
      if (done.state === "succeeded") {
        setStatus($("models-status"), t("co.models.retrained", { message: done.message || done.result.version || "" }), "ok");
      } else {
        setStatus($("models-status"), done.message || t("job.state." + done.state), "error");
      }
      await this.loadModels();
    },

    /** Show the newest batch job (and follow a running retraining) after a reload. */
    async resumeJobs() {
      let jobs;
      try {
        jobs = (await api.get("/jobs?limit=20")).items;
      } catch (e) {
        return;
      }
      const batch = jobs.find((j) => j.kind === "batch");
      if (batch && ["queued", "running"].includes(batch.state)) this.watchBatch(batch);
      else if (batch && batch.state === "succeeded") {
        jobView("batch").show(batch);
        this.batchJob = batch;
        this.loadResults(batch).catch((e) => setStatus($("batch-status"), describe(e), "error"));
      }
      const retrain = jobs.find((j) => j.kind === "retrain");
      if (retrain && ["queued", "running"].includes(retrain.state)) this.watchRetrain(retrain);
    },

    relabel() {
      this.renderOwners();
      this.renderResults();
      this.renderModels();
      if (this.batchJob) jobView("batch").show(this.batchJob);
    },
  };

  /* ---------- sign-in, roles, language ---------- */

  const VIEWS = { enterprise: "enterprise", college: "college", coordinator: "coordinator", admin: "coordinator" };
  const CONTROLLERS = { enterprise, college, coordinator };

  function renderWho() {
    const who = $("who");
    if (!state.me) {
      show(who, false);
      return;
    }
    clear(who).append(el("span", { class: "role" }, t("role." + state.me.role)), " ", state.me.org.name);
    show(who, true);
  }

  async function enterRole(me) {
    state.me = me;
    state.view = VIEWS[me.role] || "coordinator";
    show($("signin"), false);
    show($("signout"), true);
    renderWho();
    for (const name of ["enterprise", "college", "coordinator"]) show($("view-" + name), name === state.view);
    document.body.dataset.role = me.role;
    try {
      await CONTROLLERS[state.view].enter();
    } catch (e) {
      if (state.me) notice(describe(e));
    }
  }

  async function signIn(key, silent) {
    const error = $("signin-error");
    show(error, false);
    if (!key) {
      error.textContent = t("signin.empty");
      show(error, true);
      return;
    }
    let me;
    try {
      me = await request("GET", "/me", { key });
    } catch (e) {
      try { window.sessionStorage.removeItem(KEY_STORE); } catch (x) { /* ignore */ }
      error.textContent = e.status === 401 ? (silent ? t("signin.expired") : t("signin.wrong"))
        : t("signin.failed", { message: e.message });
      error.dataset.code = e.code;
      show(error, true);
      show($("signin"), true);
      return;
    }
    try {
      window.sessionStorage.setItem(KEY_STORE, key);
    } catch (e) { /* the key then lives in this page only */ }
    $("key").value = "";
    await enterRole(me);
  }

  /** Forget everything the last session put on the page (another may sign in next). */
  function resetViews() {
    for (const id of ["need-list", "rec-list", "program-select", "partner-list", "import-owner",
      "import-problems", "batch-problems", "batch-notes", "downloads", "gap-heatmap", "alloc-table", "unmet-table",
      "models-table", "reference-list", "skill-gap-table"]) clear($(id));
    for (const id of ["program-info", "partners-status", "recs-status", "need-form-status", "import-status",
      "batch-status", "batch-summary", "alloc-summary", "models-status"]) $(id).textContent = "";
    for (const id of ["batch-results", "batch-job", "batch-cancel", "retrain-job", "reference-majors",
      "skill-gaps"]) show($(id), false);
    $("recs-low").checked = false;
    $("partners-low").checked = false;
    for (const form of ["need-form", "import-form", "batch-form"]) $(form).reset();
    $("batch-start").disabled = false;
    $("retrain").disabled = false;
    $("retrain-force").checked = false;
    for (const label of document.querySelectorAll("#batch-form .files")) show(label, false);
    Object.assign(enterprise, { needs: [], current: null, recs: null, stages: new Map() });
    Object.assign(college, { programs: [], current: null, partners: null, stages: new Map() });
    Object.assign(coordinator, { tab: "import", owners: [], batchJob: null, results: null, models: null });
  }

  function signOut(message) {
    try { window.sessionStorage.removeItem(KEY_STORE); } catch (e) { /* ignore */ }
    state.gen += 1;
    resetViews();
    state.me = null;
    state.view = null;
    delete document.body.dataset.role;
    for (const name of ["enterprise", "college", "coordinator"]) show($("view-" + name), false);
    show($("signout"), false);
    renderWho();
    notice("");
    show($("signin"), true);
    const error = $("signin-error");
    error.textContent = message || "";
    show(error, Boolean(message));
    if (window.location.hash) history.replaceState(null, "", window.location.pathname);
  }

  function relabel() {
    I.apply();
    $("lang").textContent = t("lang.switch");
    document.title = "iei-match · " + t("app.title");
    renderWho();
    if (state.view === "enterprise") {
      fillLevels($("need-level"));
      enterprise.renderList();
      $("need-form-title").textContent = t($("need-form-title").dataset.i18n);
      enterprise.renderRecs();
    } else if (state.view === "college") {
      college.render();
    } else if (state.view === "coordinator") {
      coordinator.relabel();
    }
  }

  function wire() {
    $("signin-form").addEventListener("submit", (e) => {
      e.preventDefault();
      signIn($("key").value.trim(), false);
    });
    $("signout").addEventListener("click", () => signOut(""));
    $("lang").addEventListener("click", () => {
      I.setLang(I.lang === "zh" ? "en" : "zh");
      relabel();
    });
    $("need-new").addEventListener("click", () => {
      if (window.location.hash) window.location.hash = "";
      else enterprise.blank();
      enterprise.renderList();
      $("need-title").focus();
    });
    $("need-form").addEventListener("submit", (e) => enterprise.save(e));
    $("recs-near").addEventListener("change", () => enterprise.loadRecs());
    $("recs-low").addEventListener("change", () => enterprise.loadRecs());
    $("partners-low").addEventListener("change", () => college.route());
    $("program-select").addEventListener("change", (e) => {
      window.location.hash = "program/" + e.target.value;
    });
    window.addEventListener("hashchange", () => {
      if (state.view === "enterprise") enterprise.route();
      else if (state.view === "college") college.route();
    });
    for (const b of document.querySelectorAll("#view-coordinator [data-tab]")) {
      b.addEventListener("click", () => coordinator.select(b.dataset.tab));
    }
    $("import-kind").addEventListener("change", () => coordinator.renderOwners());
    $("import-form").addEventListener("submit", (e) => coordinator.upload(e));
    $("batch-form").addEventListener("submit", (e) => coordinator.startBatch(e));
    $("batch-cancel").addEventListener("click", () => coordinator.cancelBatch());
    for (const radio of document.querySelectorAll("input[name=source]")) {
      radio.addEventListener("change", () => {
        const files = document.querySelector("input[name=source]:checked").value === "files";
        for (const label of document.querySelectorAll("#batch-form .files")) show(label, files);
      });
    }
    for (const label of document.querySelectorAll("#batch-form .files")) show(label, false);
    $("retrain").addEventListener("click", () => coordinator.retrain());
  }

  function start() {
    I.setLang(I.lang);
    wire();
    relabel();
    const key = getKey();
    if (key) {
      show($("signin"), false); // signed in already in this tab: no flash of the form
      signIn(key, true);
    } else {
      show($("signin"), true);
      $("key").focus();
    }
    document.body.dataset.ready = "1";
  }

  start();
})();
