// Content editor helpers: the checker's findings cut into highlighted text pieces, and the SMS
// length of a text (the same rules as flywheel/content/templates.py: GSM-7 160/153, else UCS-2
// 70/67 per part). Unit-tested in content.test.ts.

export interface Finding {
  phrase: string;
  start: number;
  end: number;
  rule: string;
}

export interface Piece {
  text: string;
  finding: Finding | null;
}

/** ``text`` cut at the findings' [start, end) offsets (code points of a Python str), overlaps
 *  merged into the first finding. */
export function highlight(text: string, findings: readonly Finding[]): Piece[] {
  const chars = Array.from(text); // Python offsets count code points, not UTF-16 units
  const sorted = [...findings].filter((f) => f.end > f.start && f.start < chars.length).sort((a, b) => a.start - b.start || b.end - a.end);
  const pieces: Piece[] = [];
  let at = 0;
  for (const finding of sorted) {
    const start = Math.max(finding.start, at);
    const end = Math.min(finding.end, chars.length);
    if (end <= start) continue;
    if (start > at) pieces.push({ text: chars.slice(at, start).join(""), finding: null });
    pieces.push({ text: chars.slice(start, end).join(""), finding });
    at = end;
  }
  if (at < chars.length) pieces.push({ text: chars.slice(at).join(""), finding: null });
  return pieces;
}

const GSM_BASIC = new Set(
  Array.from(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?" +
      "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà",
  ),
);
const GSM_EXTENDED = new Set(Array.from("^{}\\[~]|€\f"));

export interface SmsCount {
  encoding: "gsm7" | "ucs2";
  length: number;
  segments: number;
  per_segment: number;
}

export function smsCount(text: string): SmsCount {
  const chars = Array.from(text);
  let length: number;
  let single: number;
  let multi: number;
  let encoding: SmsCount["encoding"];
  if (chars.every((c) => GSM_BASIC.has(c) || GSM_EXTENDED.has(c))) {
    length = chars.reduce((n, c) => n + (GSM_EXTENDED.has(c) ? 2 : 1), 0);
    [single, multi, encoding] = [160, 153, "gsm7"];
  } else {
    length = text.length; // UTF-16 code units, as the operators count UCS-2
    [single, multi, encoding] = [70, 67, "ucs2"];
  }
  if (length <= single) return { encoding, length, segments: length ? 1 : 0, per_segment: single };
  return { encoding, length, segments: Math.ceil(length / multi), per_segment: multi };
}

/** The editor's text fields, as a save (PATCH /items/{id}) carries them. */
export interface EditorText {
  subject: string;
  body: string;
}

export interface PreviewRequest {
  user_id: number | null;
  draft?: EditorText;
}

/** The body of POST /items/{id}/preview: the editor's text goes along as an unsaved ``draft``
 *  when it differs from the saved version, so the preview shows what is on screen; unchanged
 *  text previews the saved version (which also needs no write permission). */
export function previewRequest(userId: number | null, saved: EditorText, editor: EditorText): PreviewRequest {
  if (editor.subject === saved.subject && editor.body === saved.body) return { user_id: userId };
  return { user_id: userId, draft: { subject: editor.subject, body: editor.body } };
}
