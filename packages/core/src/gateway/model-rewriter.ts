/**
 * Rewrites the upstream's model name in each chunk to the gateway's model id, by replacing one
 * exact substring (no parse). The upstream's name is learned from the first chunk that has a
 * non-empty one: Azure opens with a prompt-filter preamble whose `model` is "" (and its
 * content-filter annotations after the finish chunk have "" too), which are rewritten as well.
 * Chunks that spell the name differently pass unchanged.
 */
export function modelRewriter(modelId: string): (data: string) => string {
  const to = `"model":${JSON.stringify(modelId)}`;
  const empty = '"model":""';
  let from: string | null = null;
  const replace = (data: string, needle: string): string | null => {
    const at = data.indexOf(needle);
    return at === -1 ? null : data.slice(0, at) + to + data.slice(at + needle.length);
  };
  return (data) => {
    if (from === null) {
      const match = /"model":("(?:[^"\\]|\\.)+")/.exec(data);
      if (match) from = `"model":${match[1]}`;
    }
    return (from !== null && from !== to ? replace(data, from) : null) ?? replace(data, empty) ?? data;
  };
}
