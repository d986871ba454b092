using FormalChat.Node;

namespace FormalChat.Cluster.Tests;

/// <summary>
/// The parts of the node that push back instead of buffering, without sockets: the inbox lanes
/// bounded in bytes and the per-client rate limit.
/// </summary>
public sealed class BackpressureTests
{
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task A_full_lane_makes_its_writer_wait_until_the_reader_takes_something()
    {
        var lane = new BoundedLane<string>(capacityBytes: 100, new Doorbell());
        await lane.WriteAsync("first", 60, CancellationToken.None);

        var second = lane.WriteAsync("second", 60, CancellationToken.None).AsTask();

        Assert.False(second.IsCompleted);
        Assert.Equal(60, lane.QueuedBytes);
        Assert.True(lane.TryRead(out var taken));
        Assert.Equal("first", taken);
        await second.WaitAsync(Deadline);
        Assert.True(lane.TryRead(out taken));
        Assert.Equal("second", taken);
        Assert.Equal(0, lane.QueuedBytes);
    }

    [Fact]
    public async Task An_empty_lane_takes_an_item_larger_than_its_capacity_so_no_frame_waits_forever()
    {
        var lane = new BoundedLane<string>(capacityBytes: 10, new Doorbell());

        await lane.WriteAsync("large", 1000, CancellationToken.None).AsTask().WaitAsync(Deadline);

        Assert.True(lane.TryRead(out var taken));
        Assert.Equal("large", taken);
    }

    [Fact]
    public async Task A_forced_item_goes_in_whatever_the_lane_holds_and_keeps_its_order()
    {
        var lane = new BoundedLane<string>(capacityBytes: 10, new Doorbell());
        await lane.WriteAsync("frame", 10, CancellationToken.None);

        lane.Force("disconnected", 64);

        Assert.True(lane.TryRead(out var first));
        Assert.True(lane.TryRead(out var second));
        Assert.Equal(["frame", "disconnected"], [first, second]);
    }

    [Fact]
    public async Task A_batch_goes_in_whole_and_in_order_once_the_lane_has_room_for_all_of_it()
    {
        var lane = new BoundedLane<string>(capacityBytes: 100, new Doorbell());
        await lane.WriteAsync("first", 60, CancellationToken.None);

        var batch = lane.WriteAllAsync([("a", 30), ("b", 30)], 60, CancellationToken.None).AsTask();

        // Room for "a" alone is not enough: the batch waits whole, and nothing of it is in the lane.
        Assert.False(batch.IsCompleted);
        Assert.Equal(60, lane.QueuedBytes);
        Assert.True(lane.TryRead(out var taken));
        Assert.Equal("first", taken);
        // Reading "first" made room: the batch may go in on another thread at once, so it is awaited, not looked for.
        await batch.WaitAsync(Deadline);
        Assert.True(lane.TryRead(out var a));
        Assert.True(lane.TryRead(out var b));
        Assert.Equal(["a", "b"], [a, b]);
        Assert.Equal(0, lane.QueuedBytes);
    }

    [Fact]
    public async Task A_read_batch_reaches_its_lane_when_handed_on_or_when_it_grows_past_its_bound()
    {
        var lane = new BoundedLane<string>(capacityBytes: 1024 * 1024, new Doorbell());
        var batch = new LaneBatch<string>(lane, CancellationToken.None);

        await batch.AddAsync("one", 10);
        await batch.AddAsync("two", 10);
        Assert.Equal(0, lane.QueuedBytes);
        await batch.HandOnAsync();
        Assert.Equal(20, lane.QueuedBytes);

        await batch.AddAsync("large", (int)LaneBatch<string>.MaxBytes);
        Assert.Equal(20 + LaneBatch<string>.MaxBytes, lane.QueuedBytes);
        // Handing on an empty batch writes nothing.
        await batch.HandOnAsync();
        var read = new List<string>();
        while (lane.TryRead(out var item)) read.Add(item);
        Assert.Equal(["one", "two", "large"], read);
    }

    [Fact]
    public async Task A_writer_waiting_on_a_full_lane_stops_when_the_node_stops()
    {
        var lane = new BoundedLane<string>(capacityBytes: 10, new Doorbell());
        await lane.WriteAsync("frame", 10, CancellationToken.None);
        using var stopping = new CancellationTokenSource();

        var waiting = lane.WriteAsync("more", 10, stopping.Token).AsTask();
        stopping.Cancel();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => waiting.WaitAsync(Deadline));
    }

    [Fact]
    public void A_ring_before_the_wait_is_kept_and_the_loop_does_not_block_so_it_woke_no_later_than_rung()
    {
        var doorbell = new Doorbell();
        doorbell.Ring();

        Assert.Equal(TimeSpan.Zero, doorbell.Wait(Deadline));
    }

    [Fact]
    public async Task A_loop_that_blocked_is_told_how_long_after_the_ring_it_woke()
    {
        var doorbell = new Doorbell();
        var wokeAfter = TimeSpan.Zero;
        // A ring that comes before the waiter blocks is taken at once (zero): rung again until a
        // waiter blocked first, which is then told a time.
        for (var attempt = 0; attempt < 1000 && wokeAfter == TimeSpan.Zero; attempt++)
        {
            using var started = new ManualResetEventSlim();
            var waiting = Task.Factory.StartNew(() =>
            {
                started.Set();
                return doorbell.Wait(Deadline);
            }, TaskCreationOptions.LongRunning);
            Assert.True(started.Wait(Deadline));
            doorbell.Ring();
            wokeAfter = await waiting.WaitAsync(Deadline);
        }

        Assert.True(wokeAfter > TimeSpan.Zero);
        Assert.True(wokeAfter < Deadline);
    }

    [Fact]
    public void The_control_lane_takes_a_bounded_number_of_events_from_outside_and_always_the_nodes_own()
    {
        var inbox = new NodeInbox();
        var status = FormalChat.Protocol.NodeState.Event.NewClientRequested(1, FormalChat.Protocol.ClientRequest.Status);

        var taken = Enumerable.Range(0, NodeInbox.MaxControlBacklog + 10).Count(_ => inbox.TryControl(status));
        inbox.Control(FormalChat.Protocol.NodeState.Event.Ticked);

        Assert.Equal(NodeInbox.MaxControlBacklog, taken);
        var read = 0;
        while (inbox.TryReadControl(out _)) read++;
        Assert.Equal(NodeInbox.MaxControlBacklog + 1, read);
        Assert.True(inbox.TryControl(status));
    }

    [Fact]
    public void A_client_within_its_burst_is_not_slowed()
    {
        var rate = new ClientRateLimit(ratePerSecond: 10, burst: 5);

        var waits = Enumerable.Range(0, 5).Select(_ => rate.Take()).ToList();

        Assert.All(waits, wait => Assert.Equal(TimeSpan.Zero, wait));
        Assert.False(rate.IsSlowing);
    }

    [Fact]
    public void A_client_past_its_burst_waits_about_one_interval_per_frame()
    {
        var rate = new ClientRateLimit(ratePerSecond: 10, burst: 5);
        for (var i = 0; i < 5; i++) rate.Take();

        var wait = rate.Take();

        Assert.True(rate.IsSlowing);
        Assert.InRange(wait.TotalMilliseconds, 50, 100);
    }

    [Fact]
    public void Rate_zero_means_no_limit()
    {
        var rate = new ClientRateLimit(ratePerSecond: 0, burst: 1);

        Assert.True(rate.IsOff);
        Assert.All(Enumerable.Range(0, 1000).Select(_ => rate.Take()), wait => Assert.Equal(TimeSpan.Zero, wait));
    }
}
