// The API reference at /planscape-backend/docs: the server's OpenAPI document rendered by
// Swagger UI (bundled from npm, nothing from a CDN). "Try it out" calls this same origin:
// the session cookie goes along, and changes carry the CSRF header the server asks of
// cookie-authenticated requests.
import SwaggerUIBundle from 'swagger-ui-dist/swagger-ui-bundle.js';
import 'swagger-ui-dist/swagger-ui.css';
import './docs.css';

interface SwaggerRequest { method?: string; headers: Record<string, string>; credentials?: string }

SwaggerUIBundle({
  url: '/planscape-backend/openapi.json',
  dom_id: '#swagger',
  deepLinking: true,
  persistAuthorization: false,
  requestInterceptor: (req: SwaggerRequest) => {
    const method = (req.method ?? 'GET').toUpperCase();
    if (method !== 'GET' && method !== 'HEAD') req.headers['X-Planscape-CSRF'] = '1';
    req.credentials = 'same-origin';
    return req;
  },
});
