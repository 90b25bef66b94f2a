import assert from "node:assert/strict";
import { test } from "node:test";

import { AMATEUR_BANDS, bandOf, bandTarget, offeredBands } from "../src/bands.js";

const names = (offers) => offers.map((o) => o.band.name);

test("bands: 160 m to 70 cm, each start inside its band", () => {
  assert.equal(AMATEUR_BANDS[0].name, "160m");
  assert.equal(AMATEUR_BANDS.at(-1).name, "70cm");
  for (const band of AMATEUR_BANDS) {
    assert.ok(band.low <= band.start && band.start <= band.high, band.name);
  }
});

test("bands: only those the rig's ranges reach are offered", () => {
  assert.equal(offeredBands([]).length, AMATEUR_BANDS.length, "no ranges known: all of them");
  const hf = [{ low: 1_800_000, high: 29_700_000 }];
  assert.deepEqual(names(offeredBands(hf)), [
    "160m", "80m", "60m", "40m", "30m", "20m", "17m", "15m", "12m", "10m",
  ]);
  // the simulated station: 0.1-30, 50-54 and 144-148 MHz
  const sim = [
    { low: 100_000, high: 30_000_000 },
    { low: 50_000_000, high: 54_000_000 },
    { low: 144_000_000, high: 148_000_000 },
  ];
  const offered = names(offeredBands(sim));
  assert.ok(offered.includes("6m") && offered.includes("2m"));
  assert.ok(!offered.includes("4m") && !offered.includes("70cm"));
  // a range covering only the top of 20 m: the band enters where the rig starts
  const top = offeredBands([{ low: 14_300_000, high: 14_400_000 }]);
  assert.deepEqual(top.map((o) => [o.band.name, o.entry]), [["20m", 14_300_000]]);
});

test("bands: a band button returns to the last frequency used in it", () => {
  const [offer] = offeredBands([{ low: 14_000_000, high: 14_350_000 }]);
  assert.equal(bandTarget(offer, undefined, []), 14_200_000);
  assert.equal(bandTarget(offer, 14_074_000, []), 14_074_000);
  assert.equal(bandTarget(offer, 7_074_000, []), 14_200_000, "not in the band");
  assert.equal(bandTarget(offer, 14_010_000, [{ low: 14_100_000, high: 14_350_000 }]), 14_200_000);
  assert.equal(bandOf(7_074_000)?.name, "40m");
  assert.equal(bandOf(15_000_000), null);
});
