using FormalChat.CommandLine;
using FormalChat.Protocol;

namespace FormalChat.Client;

/// Asks one node (a --peer seed) for the cluster: its /status lists every live node with its
/// load. A node answers status before any hello, so the probe registers no nickname.
public static class SeedProbe
{
    private static readonly TimeSpan AnswerTimeout = TimeSpan.FromSeconds(3);

    /// The seed's view of the cluster; empty when the seed cannot be reached or does not answer.
    public static async Task<IReadOnlyList<NodeCandidate>> AskAsync(Endpoint seed, ClientTlsOptions? tls = null)
    {
        Connection connection;
        try
        {
            connection = await Connection.ConnectAsync(seed, TimeSpan.FromSeconds(2), tls);
        }
        catch (ConnectFailedException)
        {
            return [];
        }
        using (connection)
        {
            var status = new TaskCompletionSource<ClusterStatus?>(TaskCreationOptions.RunContinuationsAsynchronously);
            connection.Start(line =>
            {
                var decoded = Wire.decodeServerReply(line);
                if (decoded.IsError) status.TrySetResult(null);
                else if (decoded.ResultValue is ServerReply.StatusReported { Item: var report }) status.TrySetResult(report);
                else if (decoded.ResultValue.IsErrorReply) status.TrySetResult(null);
            });
            _ = connection.Closed.ContinueWith(_ => status.TrySetResult(null), TaskScheduler.Default);
            connection.Send(ClientRequest.Status);
            connection.Send(ClientRequest.Quit);
            var answer = await status.Task.WaitAsync(AnswerTimeout).ContinueWith(task => task.IsCompletedSuccessfully ? task.Result : null, TaskScheduler.Default);
            return answer is null ? [] : NodeChoice.FromStatus(answer);
        }
    }
}
