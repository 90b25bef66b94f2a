"""The forwarding-latency recorder keeps the newest samples in a fixed ring, in order."""

from media.forwarder import LatencyRecorder


def test_the_newest_samples_are_held_newest_first_across_the_wrap() -> None:
    recorder = LatencyRecorder(every=1, capacity=5)
    recorder.extend([1.0, 2.0, 3.0])
    assert recorder.samples() == [3.0, 2.0, 1.0]
    mark = recorder.recorded
    recorder.extend([4.0, 5.0, 6.0, 7.0])  # wraps: 1.0 and 2.0 are gone
    assert recorder.samples() == [7.0, 6.0, 5.0, 4.0, 3.0]
    assert recorder.since(mark) == [7.0, 6.0, 5.0, 4.0]
    assert recorder.since(recorder.recorded) == []


def test_a_batch_larger_than_the_ring_keeps_its_newest() -> None:
    recorder = LatencyRecorder(every=1, capacity=4)
    recorder.extend([0.5])
    recorder.extend([float(n) for n in range(10)])
    assert recorder.recorded == 11
    assert recorder.samples() == [9.0, 8.0, 7.0, 6.0]
    # a mark older than what is held gets what is held
    assert recorder.since(0) == [9.0, 8.0, 7.0, 6.0]


def test_clear_forgets_the_held_samples_but_not_the_count() -> None:
    recorder = LatencyRecorder(every=1, capacity=4)
    recorder.extend([1.0, 2.0, 3.0])
    recorder.clear()
    assert recorder.samples() == []
    assert recorder.recorded == 3
    recorder.extend([4.0])
    assert recorder.samples() == [4.0]
    assert recorder.since(2) == [4.0]
