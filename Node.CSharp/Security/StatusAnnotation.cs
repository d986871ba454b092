namespace FormalChat.Node.Security;

/// <summary>
/// What the shell adds to a status reply, outside the protocol's status record: a last field
/// spliced into the reply's JSON object (no re-parse: every client polls status, and this runs on
/// the node's loop).
/// </summary>
public static class StatusAnnotation
{
    public static string AddField(string statusJson, string name, string valueJson)
    {
        var end = statusJson.LastIndexOf('}');
        if (end < 0) return statusJson;
        return string.Concat(statusJson.AsSpan(0, end), $",\"{name}\":{valueJson}", statusJson.AsSpan(end));
    }

    /// <summary>Whether the client port speaks TLS, and what the client-side checks refused
    /// (docs/SECURITY.md): the client decides by its own --tls flag, this is for operators.</summary>
    public static string AddClientSecurity(string statusJson, bool tls, InputCounters counters) =>
        AddField(statusJson, "clientSecurity",
            $"{{\"tls\":{(tls ? "true" : "false")},\"refusedTlsConnections\":{counters.RefusedTlsConnections}," +
            $"\"failedResumes\":{counters.FailedResumes},\"throttledResumes\":{counters.ThrottledResumes}," +
            $"\"failedLogins\":{counters.FailedLogins},\"throttledLogins\":{counters.ThrottledLogins}}}");
}
