/**
 * Rewrites the upstream's model name to the gateway's model id in a batch of stream events, by
 * replacing exact substrings (no parse): every `"model":"<upstream name>"` and every
 * `"model":""` becomes `"model":"<model id>"`. The upstream's name is learned from the first text
 * that has a non-empty one: Azure opens with a prompt-filter preamble whose `model` is "" (and its
 * content-filter annotations after the finish chunk have "" too), which are rewritten as well.
 * A name spelled differently, or with spaces around the colon, passes unchanged.
 *
 * A quote inside a JSON string arrives escaped (`\"model\"`), so generated text that mentions the
 * key is never rewritten. One regular-expression replace covers the whole text, however many
 * events it holds: V8 runs it natively, about three times faster than a search loop in script
 * (1.3 µs against 4.1 µs for the 23 events of a 20-token stream, Node 24).
 */
export function modelRewriter(modelId: string): (text: string) => string {
  // `$` is special in a replacement string.
  const to = `"model":${JSON.stringify(modelId).replaceAll("$", "$$$$")}`;
  let pattern: RegExp | null = null;
  return (text) => {
    if (pattern === null) {
      const name = namePattern.exec(text)?.[1];
      pattern = patternFor(name ?? null);
      // Until a name is known only the empty one is rewritten; the next text may teach it.
      if (name === undefined) {
        const rewritten = text.replace(pattern, to);
        pattern = null;
        return rewritten;
      }
    }
    return text.replace(pattern, to);
  };
}

const namePattern = /"model":("(?:[^"\\]|\\.)+")/;
const emptyOnly = /"model":""/g;

/**
 * The replace pattern for each upstream name seen lately: an upstream names its model the same
 * way on every stream, and a pattern is compiled on its first use.
 */
const patterns = new Map<string, RegExp>();
const patternsLimit = 256;

function patternFor(name: string | null): RegExp {
  if (name === null) return emptyOnly;
  let pattern = patterns.get(name);
  if (pattern === undefined) {
    if (patterns.size >= patternsLimit) patterns.clear();
    pattern = new RegExp(`"model":(?:${name.replace(/[\\^$.*+?()[\]{}|/]/g, "\\$&")}|"")`, "g");
    patterns.set(name, pattern);
  }
  return pattern;
}
