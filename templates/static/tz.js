// The admin's time zone for the console's dates: the login form sends it.
// Without JavaScript the console uses the server's zone, and says so.
(function () {
  var f = document.getElementById("tz");
  try {
    if (f) { f.value = Intl.DateTimeFormat().resolvedOptions().timeZone || ""; }
  } catch (e) { /* an old browser: the server's zone */ }
})();
