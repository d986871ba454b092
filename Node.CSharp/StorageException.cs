namespace FormalChat.Node;

/// <summary>
/// The node cannot keep its room logs: its data directory cannot be created or locked, or a log
/// cannot be read, written or synced. The node stops with this message rather than acknowledge
/// messages it has not stored.
/// </summary>
public sealed class StorageException(string message, Exception? inner = null) : Exception(message, inner);
