// Node-size presets (actors/capacity/sizes.ts): defaults, a configured preset, the `standard` fallback, and
// `--node-sizes` parsing with EE-CONFIG-INVALID for entries that do not parse.
import test from "ava";
import { parseNodeSizes, sizePresets } from "../../actors/capacity/sizes.ts";

test("defaults, configured presets and the standard fallback", (t) => {
  t.deepEqual(sizePresets(["tiny", "llm", "odd"]), [
    { node_size: "tiny", vcpus: 1, memory_mb: 2048, gpus: 0 },
    { node_size: "llm", vcpus: 16, memory_mb: 65_536, gpus: 1 },
    { node_size: "odd", vcpus: 4, memory_mb: 8192, gpus: 0 },
  ]);
  t.deepEqual(sizePresets(["tiny"], { tiny: { vcpus: 2, memory_mb: 1024, gpus: 0 } }), [
    { node_size: "tiny", vcpus: 2, memory_mb: 1024, gpus: 0 },
  ]);
});

test("--node-sizes takes NAME or NAME=VCPUS:MEMORY_MB:GPUS", (t) => {
  t.deepEqual(parseNodeSizes("tiny, gpu=8:32768:1"), {
    names: ["tiny", "gpu"],
    presets: { gpu: { vcpus: 8, memory_mb: 32_768, gpus: 1 } },
  });
  for (const bad of ["tiny,,llm", "Tiny", "gpu=8:32768", "gpu=a:1:0", "tiny,tiny"])
    t.throws(() => parseNodeSizes(bad), { code: "EE-CONFIG-INVALID" } as never, bad);
});
