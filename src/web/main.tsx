/** The console's entry point: its styles, then the shell drawn into #app. */
import '@xterm/xterm/css/xterm.css';
import './styles.css';
import { render } from 'preact';
import { App } from './app.tsx';

render(<App />, document.getElementById('app')!);
