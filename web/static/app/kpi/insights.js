// The KPI page's newer sections, each shown only to the roles its API allows (a refusal
// still shows inside its own section and leaves the rest of the page working).
import { html } from '../../vendor/preact-htm.mjs';
import BacktestSection from './backtest.js';
import { may } from './common.js';
import IntegritySection from './integrity.js';
import { GridWorkSection, SourcesSection } from './seeds.js';

export default function Insights({ user, period }) {
  return html`
    ${may(user, 'seeds') ? html`<${GridWorkSection} period=${period} /><${SourcesSection} period=${period} />` : null}
    ${may(user, 'integrity') ? html`<${IntegritySection} period=${period} />` : null}
    ${may(user, 'backtest') ? html`<${BacktestSection} user=${user} />` : null}`;
}
