// Calls the gateway's /auth/me and the demo API (forwarded to the demo origin with the
// session's access token) and shows their JSON. The session cookie is HttpOnly: this script
// never sees a token, the gateway adds it on the way to the API.
async function show(id, url) {
  const out = document.getElementById(id);
  try {
    const response = await fetch(url, { headers: { accept: 'application/json' } });
    const body = await response.text();
    out.textContent = `${response.status}\n${JSON.stringify(JSON.parse(body), null, 2)}`;
  } catch (error) {
    out.textContent = `failed: ${error}`;
  }
  out.dataset.done = 'true';
}

show('me', '/auth/me');
show('api', '/api/hello');
