using Microsoft.Playwright;
using Newtonsoft.Json.Linq;
using static Microsoft.Playwright.Assertions;

namespace FormalChat.Cluster.Tests;

/// <summary>
/// The dashboard in a real browser: headless Chromium from Debian (Playwright's own browser
/// download cannot work here, so it is pointed at /usr/bin/chromium; ci/test.sh installs it).
/// The page of node 1 shows leader 3; node 3 is killed with -9; the page, without a reload,
/// shows node 3 down and node 2 as the new leader. A screenshot of that moment is kept.
/// </summary>
public sealed class DashboardInBrowserTests
{
    private static readonly string[] ChromiumPaths = ["/usr/bin/chromium", "/usr/bin/chromium-browser"];

    [SkippableFact]
    public async Task The_dashboard_shows_the_new_leader_when_the_leader_is_killed()
    {
        var chromium = ChromiumPaths.FirstOrDefault(File.Exists);
        Skip.If(chromium is null, "no Chromium at /usr/bin/chromium: install Debian's chromium (ci/test.sh does) to run the dashboard test");

        await using var cluster = await TestCluster.StartAsync(3, dashboards: true);
        await cluster.WaitForLeaderAsync(3, [1, 2, 3], TimeSpan.FromSeconds(20));
        // A room with messages, so the page has a room, an owner and a backup to show.
        await using var alice = await TestClient.ConnectAsync(cluster.ClientPort(1), "alice");
        for (var k = 1; k <= 5; k++) await alice.SendAsync(new JObject { ["type"] = "say", ["text"] = $"message {k}", ["id"] = k });
        await alice.NextAsync(frame => (string?)frame["text"] == "message 5", TimeSpan.FromSeconds(20));

        using var playwright = await Playwright.CreateAsync();
        await using var browser = await playwright.Chromium.LaunchAsync(new()
        {
            ExecutablePath = chromium,
            Headless = true,
            // Root in a container has no user namespace for Chromium's sandbox.
            Args = ["--no-sandbox"],
        });
        var page = await browser.NewPageAsync(new() { ViewportSize = new() { Width = 1000, Height = 560 } });
        await page.GotoAsync($"http://127.0.0.1:{cluster.DashboardPort(1)}/");
        var withinFailover = new LocatorAssertionsToHaveTextOptions { Timeout = 20_000 };
        await Expect(page.Locator("#leader")).ToHaveTextAsync("3", withinFailover);
        await Expect(page.Locator("#nodes tr[data-node='3']")).ToContainTextAsync("leader");
        await Expect(page.Locator("#rooms")).ToContainTextAsync("#lobby");

        cluster.Kill(3);

        await Expect(page.Locator("#leader")).ToHaveTextAsync("2", withinFailover);
        await Expect(page.Locator("#nodes tr[data-node='3']")).ToContainTextAsync("down", new() { Timeout = 20_000 });
        await Expect(page.Locator("#nodes tr[data-node='2']")).ToContainTextAsync("leader", new() { Timeout = 20_000 });

        var screenshots = Directory.CreateDirectory(Path.Combine(AppContext.BaseDirectory, "artifacts")).FullName;
        await page.ScreenshotAsync(new() { Path = Path.Combine(screenshots, "dashboard-failover.png"), FullPage = true });
    }
}
